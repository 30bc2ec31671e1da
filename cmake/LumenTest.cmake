# lumen_add_test(NAME name SOURCES a.cc b.cc [LABELS l] [TIMEOUT s])
# One GoogleTest binary per unit, registered with ctest. Test binaries use
# tests/test_main.cc, which enters the worker loop when the raylet re-launches them.
function(lumen_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LABELS;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/test_main.cc)
  target_link_libraries(${T_NAME} PRIVATE lumen::lumen GTest::gtest ${T_LIBS})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()
