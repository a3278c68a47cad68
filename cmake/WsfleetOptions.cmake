# Build options shared by every target: warnings, warnings-as-errors, sanitizers.
option(WSFLEET_WERROR "Treat warnings as errors (on in CI)" OFF)
set(WSFLEET_SANITIZE "" CACHE STRING "Sanitizer: address, undefined, thread or empty")
set_property(CACHE WSFLEET_SANITIZE PROPERTY STRINGS "" address undefined thread)

add_library(wsfleet_build_flags INTERFACE)
target_compile_options(wsfleet_build_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wformat=2 -Wno-missing-field-initializers)
if(WSFLEET_WERROR)
  target_compile_options(wsfleet_build_flags INTERFACE -Werror)
endif()

if(WSFLEET_SANITIZE)
  if(NOT WSFLEET_SANITIZE MATCHES "^(address|undefined|thread)$")
    message(FATAL_ERROR "WSFLEET_SANITIZE must be address, undefined or thread")
  endif()
  target_compile_options(wsfleet_build_flags INTERFACE
    -fsanitize=${WSFLEET_SANITIZE} -fno-omit-frame-pointer -g)
  target_link_options(wsfleet_build_flags INTERFACE -fsanitize=${WSFLEET_SANITIZE})
  # GCC's -Wmaybe-uninitialized reports false positives inside libstdc++ (std::function in
  # <regex>) once sanitizer instrumentation is on; keep it out of -Werror there only.
  target_compile_options(wsfleet_build_flags INTERFACE -Wno-maybe-uninitialized)
  if(WSFLEET_SANITIZE STREQUAL "undefined")
    target_compile_options(wsfleet_build_flags INTERFACE -fno-sanitize-recover=undefined)
  endif()
endif()

# A static library of the project: repo-root includes, the shared build flags.
function(wsfleet_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC;PRIVATE" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC wsfleet_build_flags ${ARG_PUBLIC} PRIVATE ${ARG_PRIVATE})
endfunction()
