// Real credential values: read once from their sources (environment, file)
// at start and on reload, validated, and held only in SecretBuffers (locked,
// excluded from core dumps, wiped on release). The table also carries the
// rewriter's view of each credential (mitm::CredentialSpec).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/secret.h"
#include "gateway/config.h"
#include "mitm/credentials.h"

namespace tollgate::gateway {

struct CredentialTable {
  // In config order (sorted by name); specs[i].value == values[i].get().
  std::vector<mitm::CredentialSpec> specs;
  std::vector<std::unique_ptr<SecretBuffer>> values;

  const SecretBuffer* valueOf(const std::string& name) const;
};

// Reads every credential's value. An environment source is read once and
// then removed from the process environment; on reload its value is carried
// over from `previous` (the variable is gone by then). Errors name the
// credential and the source, never a value.
Result<std::shared_ptr<const CredentialTable>> loadCredentials(const Config& cfg,
                                                               const CredentialTable* previous);

}  // namespace tollgate::gateway
