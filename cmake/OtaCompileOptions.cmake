# Compile options shared by every project target.

# Warnings are errors for project code.
function(ota_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow -Wconversion
                         -Wno-sign-conversion)
endfunction()

# Device code: C++17, no exceptions, no RTTI, no heap after start-up, same on host and board.
function(ota_device_target target)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
                                             CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions -fno-rtti>)
  ota_warnings(${target})
endfunction()

# Host code: C++20.
function(ota_host_target target)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
                                             CXX_EXTENSIONS OFF)
  ota_warnings(${target})
endfunction()

# Registers the GoogleTest cases of `target` with CTest under every label in LABELS.
# gtest_discover_tests flattens a list-valued LABELS property (CMake issue 17812), so only the
# first label would stick: the labels are set again by a script that runs after discovery.
function(ota_discover_tests target)
  cmake_parse_arguments(ARG "" "FILTER;SUFFIX;NAME" "LABELS" ${ARGN})
  if(NOT ARG_NAME)
    set(ARG_NAME all)
  endif()
  set(list_var ${target}_${ARG_NAME}_TESTS)
  set(extra)
  if(ARG_FILTER)
    list(APPEND extra TEST_FILTER ${ARG_FILTER})
  endif()
  if(ARG_SUFFIX)
    list(APPEND extra TEST_SUFFIX ${ARG_SUFFIX})
  endif()
  gtest_discover_tests(${target} TEST_LIST ${list_var} DISCOVERY_TIMEOUT 60 ${extra})
  # The sanitizer build (`make test-asan`) builds only the executables whose tests it runs.
  if("device" IN_LIST ARG_LABELS)
    set_property(GLOBAL APPEND PROPERTY OTA_DEVICE_TEST_TARGETS ${target})
  endif()
  set(script ${CMAKE_CURRENT_BINARY_DIR}/${target}_${ARG_NAME}_labels.cmake)
  file(WRITE ${script}
       "if(${list_var})\n"
       "  set_tests_properties(\${${list_var}} PROPERTIES LABELS \"${ARG_LABELS}\")\n"
       "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${script})
endfunction()

# Adds a GoogleTest executable and registers its tests with CTest under the given labels.
function(ota_gtest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  ota_host_target(${name})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  ota_discover_tests(${name} LABELS ${ARG_LABELS})
endfunction()
