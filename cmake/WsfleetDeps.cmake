# Every dependency comes from Debian 12's packages (see README.md for the list).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 CONFIG REQUIRED)

pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(SIMDJSON REQUIRED IMPORTED_TARGET simdjson)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
# The NATS C client (cnats): its CMake package wants a static library Debian does not ship.
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats)

# mbedTLS 2.28 ships no pkg-config file or CMake package.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/version.h REQUIRED)
find_library(MBEDTLS_LIB mbedtls REQUIRED)
find_library(MBEDX509_LIB mbedx509 REQUIRED)
find_library(MBEDCRYPTO_LIB mbedcrypto REQUIRED)
add_library(wsfleet_mbedtls INTERFACE)
target_include_directories(wsfleet_mbedtls INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(wsfleet_mbedtls INTERFACE ${MBEDTLS_LIB} ${MBEDX509_LIB} ${MBEDCRYPTO_LIB})

# libev (no pkg-config file): the edge's event loop. libwebsockets drives it through its
# libev plugin (Debian package libwebsockets-evlib-ev), loaded when the context starts.
find_path(LIBEV_INCLUDE_DIR ev.h REQUIRED)
find_library(LIBEV_LIB ev REQUIRED)
add_library(wsfleet_libev INTERFACE)
target_include_directories(wsfleet_libev INTERFACE ${LIBEV_INCLUDE_DIR})
target_link_libraries(wsfleet_libev INTERFACE ${LIBEV_LIB})
