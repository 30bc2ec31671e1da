// hello: the smallest lumen program — run Plus(1, 2) as a remote task and print 3.
#include <iostream>

#include "lumen/lumen.h"

int Plus(int a, int b) { return a + b; }
LUMEN_REMOTE(Plus);

int main(int argc, char** argv) {
  lumen::Init(lumen::Config{}, argc, argv);  // first: workers run tasks from here
  lumen::ObjectRef<int> sum = lumen::Task(Plus).Remote(1, 2);
  std::cout << *lumen::Get(sum) << std::endl;
  lumen::Shutdown();
  return 0;
}
