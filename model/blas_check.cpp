#include "blas_check.h"

#include <dlfcn.h>

#include <climits>
#include <cstdlib>
#include <mutex>

#include <ATen/Parallel.h>

namespace ssd {

namespace {

// The library that provides the sgemm_ LibTorch's CPU library binds to, looked up from that
// library, so through its own dependencies (Debian: the libblas.so.3 the alternatives or
// LD_PRELOAD provide; the pip wheels: none, MKL is inside). Its path (resolved) and a handle
// (RTLD_NOLOAD, for dlsym through it and its dependencies; the caller dlcloses it), or nulls.
struct BlasLibrary {
  std::string path;
  void* handle = nullptr;
  BlasLibrary() {
    Dl_info info{};
    if (!dladdr(reinterpret_cast<void*>(&at::get_num_threads), &info) || !info.dli_fname) return;
    void* torch_cpu = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    if (!torch_cpu) return;
    if (void* sgemm = dlsym(torch_cpu, "sgemm_"); sgemm && dladdr(sgemm, &info) && info.dli_fname) {
      char resolved[PATH_MAX];
      path = realpath(info.dli_fname, resolved) ? resolved : info.dli_fname;
      handle = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    }
    dlclose(torch_cpu);
  }
  ~BlasLibrary() {
    if (handle) dlclose(handle);
  }
  BlasLibrary(const BlasLibrary&) = delete;
  BlasLibrary& operator=(const BlasLibrary&) = delete;
  template <typename Fn>
  Fn* function(const char* name) const {
    return handle ? reinterpret_cast<Fn*>(dlsym(handle, name)) : nullptr;
  }
};

std::string corename(const BlasLibrary& blas) {
  auto* get = blas.function<char*()>("openblas_get_corename");
  const char* name = get ? get() : nullptr;
  return name ? name : "";
}

}  // namespace

std::string slow_blas_warning() {
  const BlasLibrary blas;
  const std::string& path = blas.path;
  const auto slash = path.rfind('/');
  if (slash == std::string::npos || slash < 5 || path.compare(slash - 5, 6, "/blas/") != 0) return {};
  return "LibTorch's CPU kernels use the reference BLAS (" + path +
         "), which makes CPU inference 5 to 15 times slower; install OpenBLAS (Debian: apt install "
         "libopenblas0-openmp, as scripts/setup.sh does)";
}

std::string openblas_core_for(bool avx2_fma, bool avx512, bool avx512_bf16) {
  if (avx512) return avx512_bf16 ? "Cooperlake" : "SkylakeX";
  return avx2_fma ? "Haswell" : "";
}

std::string openblas_core_for_this_cpu() {
  // libgcc's CPU model checks both CPUID and that the OS saves the AVX / AVX-512 registers.
  __builtin_cpu_init();
  const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2_fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  return openblas_core_for(avx2_fma, avx512, avx512 && __builtin_cpu_supports("avx512bf16"));
}

std::string openblas_core() { return corename(BlasLibrary()); }

std::string select_openblas_kernels() {
  static std::once_flag once;
  static std::string message;
  std::call_once(once, [] {
    const BlasLibrary blas;
    auto* quit = blas.function<void()>("gotoblas_dynamic_quit");
    auto* init = blas.function<void()>("gotoblas_dynamic_init");
    const std::string from = corename(blas);
    if (!quit || !init || from != "Prescott" || std::getenv("OPENBLAS_CORETYPE")) return;
    const std::string to = openblas_core_for_this_cpu();
    if (to.empty()) return;   // Prescott is right for this CPU
    // gotoblas_dynamic_init() chooses the kernel table (OPENBLAS_CORETYPE first) and sets its
    // blocking parameters; it does nothing while a table is set, which _quit() clears.
    setenv("OPENBLAS_CORETYPE", to.c_str(), 1);
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");
    message = "OpenBLAS kernels: " + from + " -> " + corename(blas) + " (OpenBLAS " + blas.path +
              " did not recognise this CPU; OPENBLAS_CORETYPE=Prescott keeps its fallback)";
  });
  return message;
}

}  // namespace ssd
