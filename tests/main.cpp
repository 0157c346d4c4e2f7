// tests/main.cpp — doctest entry point. Every TEST_CASE in tests/<folder>/*_test.cpp is registered with CTest by
// doctest_discover_tests, so `ctest` names each failing test.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
