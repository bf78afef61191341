// kmoe's version (from CMake's project()) and the git revision it was built from
// (regenerated at every build by cmake/git_revision.cmake).
#pragma once

namespace kmoe {
const char* kmoe_version();
const char* git_revision();
}  // namespace kmoe
