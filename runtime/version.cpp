#include "runtime/version.h"

namespace kmoe {
const char* kmoe_version() {
  return KMOE_VERSION;
}
}  // namespace kmoe
