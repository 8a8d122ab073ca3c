// takeEnvSecret: the value moves into a SecretBuffer and leaves nothing in
// the environment, neither in libc's view (getenv) nor in the bytes the
// kernel shows in /proc/self/environ.
#include "base/environ.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern char** environ;

namespace tollgate {
namespace {

constexpr const char* kChildMarker = "TOLLGATE_ENVIRON_TEST_CHILD";
constexpr const char* kChildVar = "TOLLGATE_ENVIRON_TEST_SECRET";
constexpr const char* kChildValue = "initial-env-secret-4f9c2a71d03e";

std::string procSelfEnviron() {
  std::ifstream in("/proc/self/environ", std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Child mode: this binary re-executed by TakesTheValueOutOfTheInitialEnvironment
// with the secret in its initial environment (the only kind /proc/PID/environ
// shows). Runs before main() and exits with a code naming the first failed
// step, so gtest never starts in the child.
[[gnu::constructor]] void environChildMode() {
  if (::getenv(kChildMarker) == nullptr) {
    return;
  }
  if (!contains(procSelfEnviron(), kChildValue)) {
    ::_exit(10);  // the secret was not there to begin with: the check below would prove nothing
  }
  auto secret = takeEnvSecret(kChildVar);
  if (!secret) {
    ::_exit(11);
  }
  if (secret->view() != kChildValue) {
    ::_exit(12);
  }
  if (::getenv(kChildVar) != nullptr) {
    ::_exit(13);
  }
  std::string after = procSelfEnviron();
  if (contains(after, kChildValue) || contains(after, std::string(kChildVar) + "=")) {
    ::_exit(14);
  }
  if (!contains(after, std::string(kChildMarker) + "=1")) {
    ::_exit(15);  // a neighbour was damaged: only the secret's bytes may be wiped
  }
  ::_exit(0);
}

TEST(TakeEnvSecretTest, TakesTheValueOutOfTheInitialEnvironment) {
  std::string marker = std::string(kChildMarker) + "=1";
  std::string var = std::string(kChildVar) + "=" + kChildValue;
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    env.push_back(*e);
  }
  env.push_back(marker.data());
  env.push_back(var.data());
  env.push_back(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char arg0[] = "environ_child";
    char* argv[] = {arg0, nullptr};
    ::execve("/proc/self/exe", argv, env.data());
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  // 10: not in /proc/self/environ before; 11: not taken; 12: wrong value;
  // 13: getenv still finds it; 14: still in /proc/self/environ; 15: a
  // neighbouring variable was damaged; 127: exec failed.
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(TakeEnvSecretTest, UnsetsTheVariableAndZeroesTheOriginalBytes) {
  // putenv(3) puts our own storage into the environment, so the test can
  // look at exactly the bytes the environment held.
  char entry[] = "TOLLGATE_TEST_TAKE=s3cret-value";
  const size_t len = sizeof(entry) - 1;
  ASSERT_EQ(::putenv(entry), 0);
  ASSERT_EQ(::getenv("TOLLGATE_TEST_TAKE"), entry + 19);

  auto secret = takeEnvSecret("TOLLGATE_TEST_TAKE");
  ASSERT_TRUE(secret.ok()) << secret.message();
  EXPECT_EQ(secret->view(), "s3cret-value");
  EXPECT_EQ(::getenv("TOLLGATE_TEST_TAKE"), nullptr);
  EXPECT_TRUE(std::all_of(entry, entry + len, [](char c) { return c == '\0'; }))
      << "the original NAME=value storage still holds bytes";
  for (char** e = environ; *e != nullptr; ++e) {
    EXPECT_NE(*e, entry) << "the environment still points at the wiped entry";
  }
}

TEST(TakeEnvSecretTest, WipesEveryDuplicateAndReturnsTheFirst) {
  char first[] = "TOLLGATE_TEST_DUP=first-value";
  char second[] = "TOLLGATE_TEST_DUP=second-value";
  // putenv replaces by name, so build the duplicate the way execve(2) can
  // deliver it: two entries in the array.
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    env.push_back(*e);
  }
  char** saved = environ;
  env.push_back(first);
  env.push_back(second);
  env.push_back(nullptr);
  environ = env.data();

  auto secret = takeEnvSecret("TOLLGATE_TEST_DUP");
  bool gone = ::getenv("TOLLGATE_TEST_DUP") == nullptr;
  environ = saved;
  ASSERT_TRUE(secret.ok()) << secret.message();
  EXPECT_EQ(secret->view(), "first-value");
  EXPECT_TRUE(gone);
  EXPECT_TRUE(std::all_of(first, first + sizeof(first) - 1, [](char c) { return c == '\0'; }));
  EXPECT_TRUE(std::all_of(second, second + sizeof(second) - 1, [](char c) { return c == '\0'; }));
}

TEST(TakeEnvSecretTest, EmptyValueIsAnEmptyBufferAndIsRemoved) {
  char entry[] = "TOLLGATE_TEST_EMPTY=";
  ASSERT_EQ(::putenv(entry), 0);
  auto secret = takeEnvSecret("TOLLGATE_TEST_EMPTY");
  ASSERT_TRUE(secret.ok()) << secret.message();
  EXPECT_TRUE(secret->empty());
  EXPECT_EQ(::getenv("TOLLGATE_TEST_EMPTY"), nullptr);
}

TEST(TakeEnvSecretTest, UnsetVariableIsAnErrorNamingIt) {
  ASSERT_EQ(::getenv("TOLLGATE_TEST_NEVER_SET"), nullptr);
  auto secret = takeEnvSecret("TOLLGATE_TEST_NEVER_SET");
  ASSERT_FALSE(secret.ok());
  EXPECT_EQ(secret.message(), "environment variable TOLLGATE_TEST_NEVER_SET is not set");
}

TEST(TakeEnvSecretTest, APrefixOfAnotherNameDoesNotMatch) {
  char entry[] = "TOLLGATE_TEST_PREFIXED=value";
  ASSERT_EQ(::putenv(entry), 0);
  auto secret = takeEnvSecret("TOLLGATE_TEST_PREFIX");
  EXPECT_FALSE(secret.ok());
  EXPECT_STREQ(::getenv("TOLLGATE_TEST_PREFIXED"), "value") << "an unrelated variable was touched";
  ASSERT_EQ(::unsetenv("TOLLGATE_TEST_PREFIXED"), 0);
}

TEST(TakeEnvSecretTest, InvalidNamesAreRefusedWithoutTouchingTheEnvironment) {
  char entry[] = "TOLLGATE_TEST_EQ=x=y";
  ASSERT_EQ(::putenv(entry), 0);
  for (std::string_view bad : {std::string_view(""), std::string_view("TOLLGATE_TEST_EQ=x"),
                               std::string_view("A\0B", 3)}) {
    auto secret = takeEnvSecret(bad);
    ASSERT_FALSE(secret.ok());
    EXPECT_NE(secret.message().find("is not valid"), std::string::npos) << secret.message();
  }
  EXPECT_STREQ(::getenv("TOLLGATE_TEST_EQ"), "x=y");
  ASSERT_EQ(::unsetenv("TOLLGATE_TEST_EQ"), 0);
}

}  // namespace
}  // namespace tollgate
