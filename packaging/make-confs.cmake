# Writes the configuration files the Debian package installs in /etc/wsfleet/, derived
# from the repository's samples so that they keep every option and comment of them:
#   cmake -DSOURCE_DIR=<repo> -DOUTPUT_DIR=<dir> -P packaging/make-confs.cmake
# The edge's sample carries a demo tenant with public keys; the packaged file has it
# commented out with empty secrets, so that an edge installed and started as is refuses
# to start ("at least one tenant is required ... until keys are configured").
# Every replaced passage must still be found: a changed sample fails the build here
# instead of shipping a file that says something else.

function(replace_once var old new)
  string(FIND "${${var}}" "${old}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "make-confs: the sample no longer contains:\n${old}")
  endif()
  string(REPLACE "${old}" "${new}" result "${${var}}")
  set(${var} "${result}" PARENT_SCOPE)
endfunction()

# ---- edge.toml
file(READ "${SOURCE_DIR}/conf/edge.toml" edge)
replace_once(edge
"# This file runs as-is from the repository root:
#     wsfleet-edge --config conf/edge.toml
# and then accepts WebSocket clients on ws://127.0.0.1:8080/ws.
"
"# This is /etc/wsfleet/edge.toml, read by the wsfleet-edge service (wsfleet-edge.toml(5)).
# As installed it defines no tenant, so the edge refuses to start: add yours at the end
# of this file with keys of your own, check the file, then start the service:
#     wsfleet-edge --check-config /etc/wsfleet/edge.toml
#     systemctl enable --now wsfleet-edge
")
replace_once(edge
"# !!! The tenant below carries DEVELOPMENT-ONLY credentials that are public in the
# !!! source tree. Replace every secret and API key before exposing an edge to anyone.
"
"# The file holds secrets once configured: keep it root:wsfleet, mode 0640.
")
replace_once(edge
"# LMDB directory for presence and channel history. Relative to this file: the sample uses
# the repository's git-ignored var/ directory. Production: an absolute path on local disk.
dir = \"../var/edge\""
"# LMDB directory for presence and channel history: an absolute path on local disk. The
# service's StateDirectory, created for the wsfleet user when the service starts.
dir = \"/var/lib/wsfleet/edge\"")

# The tenants: everything from their heading on becomes a commented example.
set(marker "# ---- Tenants.")
string(FIND "${edge}" "${marker}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "make-confs: no '${marker}' heading in conf/edge.toml")
endif()
string(SUBSTRING "${edge}" 0 ${at} head)
string(SUBSTRING "${edge}" ${at} -1 tenants)
replace_once(tenants
"# DEVELOPMENT ONLY: this key is public. Replace it.
api_keys = [\"dev-only-insecure-api-key-change-me\"]"
"# Generate one with: openssl rand -hex 24
api_keys = []")
replace_once(tenants
"# DEVELOPMENT ONLY: this secret is public. Anyone can mint tokens with it.
secret = \"dev-only-insecure-secret-change-me-0123456789\""
"# Generate one with: openssl rand -hex 32 (keep it secret: it mints tokens).
secret = \"\"")
replace_once(tenants "[tenants.demo" "[tenants.example")
replace_once(tenants "kid = \"dev-1\"" "kid = \"key-1\"")
string(REPLACE "[tenants.demo" "[tenants.example" tenants "${tenants}")
replace_once(tenants
"names are 1..64 characters of [a-z0-9_-]. At least one tenant is required.
"
"names are 1..64 characters of [a-z0-9_-]. At least one tenant is required.
#
# The example below is commented out: uncomment it (rename `example` to your tenant),
# generate its secret (an error while empty) and API key, and the edge starts.
")
# Comment out every line that is not already a comment or blank.
string(REGEX REPLACE "\n([^#\n])" "\n# \\1" tenants "${tenants}")
file(WRITE "${OUTPUT_DIR}/edge.toml" "${head}${tenants}")

# ---- bridge.toml: no secrets in the sample, but its region and servers are examples; the
# packaged file leaves the required ones empty so that the bridge refuses to start
# until they are set.
file(READ "${SOURCE_DIR}/conf/bridge.toml" bridge)
replace_once(bridge
"#     wsfleet-bridge --config conf/bridge.toml
# Validate a file without starting anything:
#     wsfleet-bridge --check-config conf/bridge.toml
"
"#     wsfleet-bridge --config /etc/wsfleet/bridge.toml
# Validate a file without starting anything:
#     wsfleet-bridge --check-config /etc/wsfleet/bridge.toml
# As installed, bridge.region and nats.servers are empty and the bridge refuses to
# start: set them (and topology.toml) first, then `systemctl enable --now wsfleet-bridge`.
")
replace_once(bridge "region = \"us-east\"" "region = \"\"")
replace_once(bridge
"servers = [\"nats://10.10.0.11:4222\", \"nats://10.10.0.12:4222\", \"nats://10.10.0.13:4222\"]"
"servers = []")
file(WRITE "${OUTPUT_DIR}/bridge.toml" "${bridge}")

file(COPY "${SOURCE_DIR}/conf/topology.toml" DESTINATION "${OUTPUT_DIR}")
