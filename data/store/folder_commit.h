// Puts a folder built as DIR.partial/ under its final name DIR. A folder cannot be renamed
// over a non-empty one, so an old DIR is first moved aside to DIR.old and removed only after
// the new one is in place: at every instant either the old or the new folder exists whole
// (a crash between the two renames leaves DIR.old and DIR.partial, both complete).
#pragma once

#include <string>

namespace kmoe {

// "dir/" and "dir" name the same folder; DIR.partial is a sibling, never inside DIR.
std::string folder_partial_path(const std::string& dir);

// fsync of a file or folder; throws naming it when the data cannot reach the disk.
void path_sync(const std::string& path);

// fsyncs the files of `partial`, then renames it to `dir` (moving an old `dir` aside and
// removing it last) and fsyncs the parent folder. Throws naming the folder on failure.
void folder_commit(const std::string& partial, const std::string& dir);

}  // namespace kmoe
