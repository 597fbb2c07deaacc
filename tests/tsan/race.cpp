// .ci/tsan's self-check: an unsynchronised OpenMP sum that ThreadSanitizer must report
// (if it does not, the TSan run proves nothing).
#include <cstdio>
int main() {
  long sum = 0;
#pragma omp parallel for
  for (int i = 0; i < 100000; ++i) sum += i;
  std::printf("%ld\n", sum);
}
