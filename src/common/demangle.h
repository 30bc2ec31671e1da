// Readable C++ type names (for error messages).
#pragma once

#include <cxxabi.h>

#include <cstdlib>
#include <string>

namespace lumen {

/// The demangled form of a mangled type name (typeid(x).name()); the input when it is
/// not a mangled name.
inline std::string Demangle(const char* mangled) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = (status == 0 && demangled) ? demangled : mangled;
  std::free(demangled);
  return out;
}

}  // namespace lumen
