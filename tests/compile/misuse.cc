// Compiled by ctest, not linked: misuses of the API that must not compile. Built as it is,
// this file compiles; with -DLUMEN_MISUSE=N, the Nth misuse must fail with the error that
// tests/CMakeLists.txt expects of it: 1-4 write to a value from Get (values are const),
// 5 passes a lambda to Task.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "lumen/lumen.h"

void Use(const lumen::ObjectRef<std::vector<double>>& ref,
         const lumen::ObjectRef<std::string>& text) {
  std::vector<double> copy = *lumen::Get(ref);  // a copy is the caller's to change
  copy.push_back(1.0);
  std::string mine = std::move(*text.Get());
  mine += "!";
#if LUMEN_MISUSE == 1
  lumen::Get(ref)->push_back(1.0);
#elif LUMEN_MISUSE == 2
  (*lumen::Get(ref))[0] = 42.0;
#elif LUMEN_MISUSE == 3
  std::sort(lumen::Get(ref)->begin(), lumen::Get(ref)->end());
#elif LUMEN_MISUSE == 4
  text.Get()->append("x");
#elif LUMEN_MISUSE == 5
  lumen::Task([](int x) { return x + 1; });
#endif
}
