// Taking a secret out of the process environment.
//
// A credential passed as an environment variable sits in two places: the
// libc environment (getenv) and, for the environment the process was started
// with, the stack area the kernel shows in /proc/PID/environ to anyone who
// may read it. takeEnvSecret() moves the value into a SecretBuffer and
// leaves neither behind.
#pragma once

#include <string_view>

#include "base/result.h"
#include "base/secret.h"

namespace tollgate {

// Copies the value of environment variable `name` into a SecretBuffer, then
// overwrites every "NAME=value" string of that name in place with
// explicit_bzero() (the bytes /proc/self/environ shows, for the initial
// environment) and removes the variable (getenv(name) is null afterwards).
// If the variable occurs more than once, the value is the first one (what
// getenv returns) and every occurrence is wiped. An empty value is returned
// as an empty buffer.
//
// Fails when `name` is not a valid variable name (empty, or contains '=' or
// NUL) or the variable is not set; the message names the variable, never a
// value.
//
// Not thread-safe, like setenv(3): call it while no other thread reads or
// writes the environment (tollgate: during start-up and reload on the main
// thread). Strings added with setenv(3) are wiped too; glibc keeps those in an
// internal cache it never frees, so wiping them is memory-safe, but a later
// setenv() of the very same NAME=value allocates afresh.
Result<SecretBuffer> takeEnvSecret(std::string_view name);

}  // namespace tollgate
