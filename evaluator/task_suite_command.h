// `kmoe suite`: writes the generated task suite (data/task_suite.h, data/TASK_SUITE.md).
// It lives with the evaluator because it proves every target task gradable with the
// evaluator's answer extraction before anything is written.
#pragma once

#include <string>

#include "data/task_suite.h"
#include "launcher/cli.h"

namespace kmoe {

// Throws std::logic_error naming the task and example id when "{rationale} The answer is
// {answer}." does not extract back to the example's answer with the task's answer type.
void task_suite_check_gradable(const TaskSuite& suite);

Subcommand suite_subcommand();

}  // namespace kmoe
