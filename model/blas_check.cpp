#include "blas_check.h"

#include <dlfcn.h>

#include <climits>
#include <cstdlib>

#include <ATen/Parallel.h>

namespace ssd {

std::string slow_blas_warning() {
  // The sgemm_ that LibTorch's CPU library binds to: looked up from that library, so through
  // its own dependencies (Debian: the libblas.so.3 the alternatives or LD_PRELOAD provide; the
  // pip wheels: none, MKL is inside).
  Dl_info info{};
  if (!dladdr(reinterpret_cast<void*>(&at::get_num_threads), &info) || !info.dli_fname) return {};
  void* torch_cpu = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
  if (!torch_cpu) return {};
  std::string path;
  if (void* sgemm = dlsym(torch_cpu, "sgemm_"); sgemm && dladdr(sgemm, &info) && info.dli_fname) {
    char resolved[PATH_MAX];
    path = realpath(info.dli_fname, resolved) ? resolved : info.dli_fname;
  }
  dlclose(torch_cpu);
  const auto slash = path.rfind('/');
  if (slash == std::string::npos || slash < 5 || path.compare(slash - 5, 6, "/blas/") != 0) return {};
  return "LibTorch's CPU kernels use the reference BLAS (" + path +
         "), which makes CPU inference about 5x slower; install OpenBLAS (Debian: apt install "
         "libopenblas0-openmp, as scripts/setup.sh does)";
}

}  // namespace ssd
