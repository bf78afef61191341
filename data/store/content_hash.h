// Content hashes of a stage's inputs, recorded in every artifact's provenance and compared
// by the completeness check. SHA-256 (OpenSSL) so the values can be checked with
// `sha256sum`. A directory (a HF model, a PEFT adapter, a bank) hashes the sorted list of
// its regular files' relative paths and hashes, so renaming or editing any file changes it.
#pragma once

#include <string>

namespace kmoe {

std::string sha256_hex(const void* data, size_t size);
// Hash of a file's contents or of a directory tree; throws naming the path if unreadable.
std::string content_hash(const std::string& path);

}  // namespace kmoe
