// An actor class shared by cluster_test and the driver program it runs
// (cluster_driver.cc): an actor one program makes, the other finds by name and calls as
// the same type.
#pragma once

#include <string>

#include "lumen/lumen.h"

namespace lumen::test {

class Tally {
 public:
  static Tally* Create(int start) { return new Tally(start); }
  int Add(int x) { return total_ += x; }
  std::string Where() { return lumen::GetRuntimeContext().NodeId(); }

 private:
  explicit Tally(int start) : total_(start) {}
  int total_;
};

}  // namespace lumen::test
