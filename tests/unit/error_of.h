// The message of the exception a call throws, for tests of error messages.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>

namespace kmoe {

// What f() throws (an E), or a test failure and "(no error)" when it throws nothing; an
// exception of another type propagates (the test fails, naming it).
template <class E = std::exception, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return "(no error)";
}

}  // namespace kmoe
