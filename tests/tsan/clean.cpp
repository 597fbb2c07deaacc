// .ci/tsan's self-check: correct OpenMP (barriers, a reduction) that ThreadSanitizer must
// pass with libarcher loaded (if it does not, reports on pmpd would be false alarms).
#include <cstdio>
#include <vector>
int main() {
  std::vector<long> v(100000);
  long sum = 0;
#pragma omp parallel
  {
#pragma omp for
    for (int i = 0; i < 100000; ++i) v[size_t(i)] = i;
#pragma omp for reduction(+ : sum)
    for (int i = 0; i < 100000; ++i) sum += v[size_t(99999 - i)];
  }
  std::printf("%ld\n", sum);
}
