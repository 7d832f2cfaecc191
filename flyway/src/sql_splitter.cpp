// A small lexer for the parts of PostgreSQL's syntax that decide where a statement ends. It
// mirrors what Flyway's PostgreSQLParser tracks (quotes, comments, dollar quotes, BEGIN ATOMIC
// blocks, COPY FROM STDIN data) and nothing more: the server parses the SQL itself.
#include "berth/flyway/sql_splitter.hpp"

#include <algorithm>

#include "berth/flyway/error.hpp"

namespace berth::flyway {
namespace {

bool is_identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}

bool is_identifier_char(char c) {
  return is_identifier_start(c) || (c >= '0' && c <= '9') || c == '$';
}

std::string upper_ascii(std::string_view text) {
  std::string upper(text);
  for (char& c : upper)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return upper;
}

// Walks a script keeping track of the current line. CRLF counts as one line break, a lone CR
// as one too (as BufferedReader.readLine sees lines).
class Cursor {
public:
  Cursor(std::string_view text, std::string_view script_name) : text_(text), script_name_(script_name) {}

  bool at_end() const { return pos_ >= text_.size(); }
  std::size_t pos() const { return pos_; }
  int line() const { return line_; }
  char peek(std::size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  bool looking_at(std::string_view token) const { return text_.substr(pos_).starts_with(token); }
  std::string_view text() const { return text_; }

  void advance() {
    char c = text_[pos_++];
    if (c == '\n' || (c == '\r' && peek() != '\n')) ++line_;
  }
  void advance(std::size_t count) {
    for (std::size_t idx = 0; idx < count && !at_end(); ++idx) advance();
  }
  // Advances past the next occurrence of `token`; false (at the end) if there is none.
  bool skip_past(std::string_view token) {
    auto found = text_.find(token, pos_);
    if (found == std::string_view::npos) {
      advance(text_.size() - pos_);
      return false;
    }
    advance(found + token.size() - pos_);
    return true;
  }
  std::string_view rest_of_line() const {
    auto end = text_.find_first_of("\r\n", pos_);
    return text_.substr(pos_, end == std::string_view::npos ? std::string_view::npos : end - pos_);
  }

  [[noreturn]] void fail(int at_line, std::string const& what) const {
    throw MigrationError(std::string(script_name_) + ":" + std::to_string(at_line) + ": " + what);
  }

private:
  std::string_view text_;
  std::string_view script_name_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

void skip_block_comment(Cursor& cursor) {
  int start_line = cursor.line();
  int depth = 0;
  while (!cursor.at_end()) {
    if (cursor.looking_at("/*")) {
      ++depth;
      cursor.advance(2);
    } else if (cursor.looking_at("*/")) {
      cursor.advance(2);
      if (--depth == 0) return;
    } else {
      cursor.advance();
    }
  }
  cursor.fail(start_line, "unterminated /* comment");
}

// Skips a quoted string or identifier starting at the opening quote. `backslash_escapes` for
// E'...' strings, where \' does not end the string.
void skip_quoted(Cursor& cursor, char quote, bool backslash_escapes) {
  int start_line = cursor.line();
  cursor.advance();
  while (!cursor.at_end()) {
    char c = cursor.peek();
    if (backslash_escapes && c == '\\') {
      cursor.advance(2);
    } else if (c == quote && cursor.peek(1) == quote) {
      cursor.advance(2);
    } else if (c == quote) {
      cursor.advance();
      return;
    } else {
      cursor.advance();
    }
  }
  cursor.fail(start_line, quote == '"' ? "unterminated quoted identifier" : "unterminated quoted string");
}

// Whether the quote at `pos` opens an E'...' string: the word just before it is a lone `E`
// written right against the quote.
bool is_escape_string_start(std::string_view text, std::size_t pos, std::vector<std::string> const& words) {
  return text[pos] == '\'' && !words.empty() && words.back() == "E" && pos > 0 &&
         (text[pos - 1] == 'E' || text[pos - 1] == 'e');
}

// The dollar-quote tag (`$$` or `$name$`) at the cursor, or empty if there is none.
std::string_view dollar_tag_at(Cursor const& cursor) {
  auto text = cursor.text();
  auto pos = cursor.pos();
  if (pos > 0 && is_identifier_char(text[pos - 1])) return {};  // `a$b$` is an identifier
  std::size_t end = pos + 1;
  if (end < text.size() && is_identifier_start(text[end])) {
    while (end < text.size() && is_identifier_char(text[end]) && text[end] != '$') ++end;
  }
  if (end >= text.size() || text[end] != '$') return {};
  return text.substr(pos, end - pos + 1);
}

std::string_view trim_right(std::string_view text) {
  auto last = text.find_last_not_of(" \t\r\n\f\v");
  return last == std::string_view::npos ? std::string_view() : text.substr(0, last + 1);
}

// The keywords and identifiers of `sql`, upper-cased, skipping comments; quoted strings and
// identifiers appear as one opaque token each so they never match a keyword.
std::vector<std::string> words_of(std::string_view sql) {
  std::vector<std::string> words;
  Cursor cursor(sql, "");
  while (!cursor.at_end()) {
    char c = cursor.peek();
    if (cursor.looking_at("--")) {
      cursor.advance(cursor.rest_of_line().size());
    } else if (cursor.looking_at("/*")) {
      skip_block_comment(cursor);
    } else if (c == '\'' || c == '"') {
      skip_quoted(cursor, c, is_escape_string_start(sql, cursor.pos(), words));
      words.emplace_back(1, c);
    } else if (c == '$' && !dollar_tag_at(cursor).empty()) {
      auto tag = dollar_tag_at(cursor);
      words.emplace_back("$");
      cursor.advance(tag.size());
      cursor.skip_past(tag);
    } else if (is_identifier_start(c) && (cursor.pos() == 0 || !is_identifier_char(sql[cursor.pos() - 1]))) {
      auto start = cursor.pos();
      while (!cursor.at_end() && is_identifier_char(cursor.peek())) cursor.advance();
      words.push_back(upper_ascii(sql.substr(start, cursor.pos() - start)));
    } else {
      cursor.advance();
    }
  }
  return words;
}

bool is_copy_from_stdin(std::vector<std::string> const& words) {
  if (words.empty() || words.front() != "COPY") return false;
  for (std::size_t idx = 1; idx + 1 < words.size(); ++idx)
    if (words[idx] == "FROM" && words[idx + 1] == "STDIN") return true;
  return false;
}

// Reads the data lines of COPY ... FROM STDIN, which start on the line after the statement's
// `;` and end before a line holding only `\.`. Sets `data_line` to the line the data starts on.
std::string read_copy_data(Cursor& cursor, int statement_line, int& data_line) {
  auto rest = cursor.rest_of_line();
  auto after_semicolon = rest.substr(0, rest.find("--"));
  if (after_semicolon.find_first_not_of(" \t") != std::string_view::npos)
    cursor.fail(cursor.line(), "unexpected text after COPY ... FROM STDIN; its data must start on the next line");
  cursor.advance(rest.size());
  if (cursor.looking_at("\r\n")) {
    cursor.advance(2);
  } else if (!cursor.at_end()) {
    cursor.advance();
  }
  auto data_start = cursor.pos();
  data_line = cursor.line();
  while (!cursor.at_end()) {
    auto line_start = cursor.pos();
    auto line = cursor.rest_of_line();
    if (line == "\\.") {
      auto data = std::string(cursor.text().substr(data_start, line_start - data_start));
      cursor.advance(line.size());
      return data;
    }
    cursor.advance(line.size());
    if (cursor.looking_at("\r\n")) {
      cursor.advance(2);
    } else if (!cursor.at_end()) {
      cursor.advance();
    }
  }
  cursor.fail(statement_line, "COPY ... FROM STDIN data is not terminated by a line \\.");
}

}  // namespace

std::vector<Statement> split_statements(std::string_view script, std::string_view script_name) {
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  if (script.starts_with(bom)) script.remove_prefix(bom.size());

  std::vector<Statement> statements;
  Cursor cursor(script, script_name);
  std::optional<std::size_t> start;  // of the current statement's first token
  int start_line = 0;
  std::vector<std::string> words;  // of the current statement, upper-cased
  int block_depth = 0;             // inside BEGIN ATOMIC ... END, where `;` does not end the statement

  auto begin_token = [&] {
    if (start) return;
    start = cursor.pos();
    start_line = cursor.line();
    words.clear();
    block_depth = 0;
  };
  auto end_statement = [&](std::size_t end) {
    statements.push_back({std::string(trim_right(script.substr(*start, end - *start))), start_line, std::nullopt, 0});
    start.reset();
  };

  while (!cursor.at_end()) {
    char c = cursor.peek();
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
      cursor.advance();
    } else if (cursor.looking_at("--")) {
      cursor.advance(cursor.rest_of_line().size());
    } else if (cursor.looking_at("/*")) {
      skip_block_comment(cursor);
    } else if (c == '\\') {
      // Outside quotes and comments a backslash can only start a psql meta-command.
      cursor.fail(cursor.line(), "psql meta-command \"" + std::string(trim_right(cursor.rest_of_line())) +
                                     "\" is not supported: berth does not run psql meta-commands\n"
                                     "HINT: express it in SQL or split the migration.");
    } else if (c == ';' && block_depth == 0) {
      if (!start) {
        cursor.advance();  // an empty statement
        continue;
      }
      end_statement(cursor.pos());
      cursor.advance();
      if (is_copy_from_stdin(words)) {
        auto& copy = statements.back();
        copy.copy_data = read_copy_data(cursor, copy.line, copy.copy_data_line);
      }
    } else if (c == '\'' || c == '"') {
      begin_token();
      skip_quoted(cursor, c, is_escape_string_start(script, cursor.pos(), words));
      words.emplace_back(1, c);
    } else if (c == '$' && !dollar_tag_at(cursor).empty()) {
      begin_token();
      auto tag = dollar_tag_at(cursor);
      int tag_line = cursor.line();
      cursor.advance(tag.size());
      if (!cursor.skip_past(tag)) cursor.fail(tag_line, "unterminated dollar-quoted string " + std::string(tag));
      words.emplace_back("$");
    } else if (is_identifier_start(c) && (cursor.pos() == 0 || !is_identifier_char(script[cursor.pos() - 1]))) {
      begin_token();
      auto word_start = cursor.pos();
      while (!cursor.at_end() && is_identifier_char(cursor.peek())) cursor.advance();
      auto word = upper_ascii(script.substr(word_start, cursor.pos() - word_start));
      if (word == "ATOMIC" && !words.empty() && words.back() == "BEGIN") {
        ++block_depth;
      } else if (block_depth > 0 && word == "CASE") {
        ++block_depth;
      } else if (block_depth > 0 && word == "END") {
        --block_depth;
      }
      words.push_back(std::move(word));
    } else {
      begin_token();
      cursor.advance();
    }
  }
  if (start) end_statement(script.size());
  return statements;
}

bool must_run_outside_transaction(std::string_view sql, int server_major_version) {
  auto words = words_of(sql);
  auto word = [&](std::size_t idx) -> std::string_view {
    return idx < words.size() ? std::string_view(words[idx]) : std::string_view();
  };
  auto first = word(0);
  if (first == "CREATE" || first == "DROP") {
    std::size_t idx = word(1) == "UNIQUE" ? 2 : 1;
    if (word(idx) == "INDEX" && word(idx + 1) == "CONCURRENTLY") return true;
    if (word(1) == "DATABASE" || word(1) == "TABLESPACE" || word(1) == "SUBSCRIPTION") return true;
  }
  if (first == "ALTER" && word(1) == "SYSTEM") return true;
  if (first == "REINDEX") {
    auto target = word(1) == "VERBOSE" ? word(2) : word(1);
    if (target == "SCHEMA" || target == "DATABASE" || target == "SYSTEM") return true;
  }
  if (first == "VACUUM") return true;
  if (first == "DISCARD" && word(1) == "ALL") return true;
  if (first == "ALTER" && word(1) == "TYPE" && server_major_version < 12) {
    for (std::size_t idx = 2; idx + 1 < words.size(); ++idx)
      if (words[idx] == "ADD" && words[idx + 1] == "VALUE") return true;
  }
  return false;
}

bool runs_in_transaction(std::span<Statement const> statements, int server_major_version, bool mixed) {
  bool transactional = false, non_transactional = false;
  for (auto const& statement : statements) {
    if (must_run_outside_transaction(statement.sql, server_major_version)) {
      non_transactional = true;
    } else {
      transactional = true;
    }
  }
  if (transactional && non_transactional && !mixed)
    throw MigrationError(
        "Detected both transactional and non-transactional statements within the same migration (even though mixed "
        "is false)");
  return !non_transactional;
}

}  // namespace berth::flyway
