#pragma once
// Who may use the operator routes of the admin listener (POST /admin/drain). Tenant API
// keys authenticate backends of one tenant; draining affects every tenant, so it takes
// its own credential: admin.operator_token. Without one configured, only peers on the
// loopback interface are trusted: on the edge host, whoever can reach loopback can
// usually signal the process too, and a fresh install works without a secret to manage.

#include <string_view>

#include "common/status.h"

namespace wsfleet {

// True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z).
bool isLoopbackAddress(std::string_view address);

// `bearer` is the credential of the request's `Authorization: Bearer …` header (empty
// when there is none), `peer` the client address. Errors: kUnauthorized
// operator_token_missing / operator_token_invalid (a token is configured), kForbidden
// operator_loopback_only (none is configured and the peer is not on loopback).
Status checkOperator(std::string_view configured_token, std::string_view bearer,
                     std::string_view peer);

}  // namespace wsfleet
