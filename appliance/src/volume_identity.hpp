// Which primary volume a backup volume belongs to. A restored copy of a primary volume is a clone
// of its PostgreSQL cluster; served on the original's backup volume it would archive its WAL into
// the original's archive (whichever archives a segment name first wins) and take snapshots among
// the original's. So each primary volume has an identity of its own (<primary>/identity, made at
// the first start and made anew by a restore), and a backup volume records its owner
// (<backup>/owner, written by the first primary that uses it). A primary that does not own the
// backup volume archives no WAL and takes no snapshots there until the operator gives it its own
// backup volume or adopts this one (`berth backup adopt`, after losing the original).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace berth::appliance {

/// The identity of the primary volume, made (random, 128 bits) when it has none yet.
std::string primary_identity(std::filesystem::path const& primary);
/// The same without making one: nullopt when it has none yet.
std::optional<std::string> existing_primary_identity(std::filesystem::path const& primary);

/// Gives the primary volume a new identity: a restore does, so that the copy is not the original.
void renew_primary_identity(std::filesystem::path const& primary);

/// The identity of the primary volume that owns `backup`, or nullopt when nobody has claimed it.
std::optional<std::string> backup_owner(std::filesystem::path const& backup);

/// Whether `primary` may archive WAL and take snapshots on `backup`: true when it owns it, and
/// when nobody does yet (it claims it then). Creates both identities as needed.
bool owns_backup_volume(std::filesystem::path const& primary, std::filesystem::path const& backup);

/// Makes `primary` the owner of `backup` (`berth backup adopt`).
void adopt_backup_volume(std::filesystem::path const& primary, std::filesystem::path const& backup);

/// True when both have identities and they differ (reads only): what status and doctor report.
bool backup_volume_is_foreign(std::filesystem::path const& primary, std::filesystem::path const& backup);

/// "the backup volume B belongs to another primary volume (owner X; this one is Y)" plus what to do.
std::string foreign_backup_volume_problem(std::filesystem::path const& primary, std::filesystem::path const& backup);

}  // namespace berth::appliance
