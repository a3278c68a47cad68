cmake_minimum_required(VERSION 3.25)
# Fails when the edge library calls a libwebsockets function the cmocka tests do not fake:
# in the test executables such a call would reach the real library with a fake wsi.
# Arguments: -DNM=<nm> -DLIB=<libwsfleet_edge.a> -DWRAPPED=<comma-separated names>
execute_process(COMMAND ${NM} --undefined-only ${LIB} OUTPUT_VARIABLE symbols
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${LIB}")
endif()
string(REPLACE "," ";" wrapped "${WRAPPED}")
string(REGEX MATCHALL "U lws_[A-Za-z0-9_]+" references "${symbols}")
set(missing "")
foreach(reference IN LISTS references)
  string(SUBSTRING "${reference}" 2 -1 name)
  if(NOT name IN_LIST wrapped AND NOT name IN_LIST missing)
    list(APPEND missing ${name})
  endif()
endforeach()
list(LENGTH references count)
if(count EQUAL 0)
  message(FATAL_ERROR "no lws_ references found in ${LIB}: is it the edge library?")
endif()
if(missing)
  message(FATAL_ERROR "the edge calls lws functions that tests/cmocka does not fake: ${missing}\n"
                      "add them to WSFLEET_FAKED_LWS_FUNCTIONS and lws_fake.cc")
endif()
