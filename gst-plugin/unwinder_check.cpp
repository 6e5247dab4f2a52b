#include "unwinder_check.h"

#include <dlfcn.h>
#include <link.h>
#include <unwind.h>

#include <cstdint>
#include <cstring>

namespace gstssd {

namespace {

// The address libstdc++ calls for `symbol`: the value of its relocated GOT slot (while lazy
// binding has not resolved it, its own PLT stub, in libstdc++).
struct GotLookup {
  const char* symbol;
  uintptr_t target = 0;
};

int find_in_libstdcxx(dl_phdr_info* info, size_t, void* data) {
  auto* lookup = static_cast<GotLookup*>(data);
  if (!info->dlpi_name || !std::strstr(info->dlpi_name, "libstdc++.so")) return 0;
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  if (!dyn) return 1;
  // (glibc relocates these entries in place on most architectures; not on all.)
  auto address = [info](ElfW(Addr) v) { return v < info->dlpi_addr ? v + info->dlpi_addr : v; };
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  const ElfW(Rela)* tables[2] = {nullptr, nullptr};
  size_t sizes[2] = {0, 0};
  bool rela = true;
  for (const ElfW(Dyn)* d = dyn; d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_SYMTAB: symtab = reinterpret_cast<const ElfW(Sym)*>(address(d->d_un.d_ptr)); break;
      case DT_STRTAB: strtab = reinterpret_cast<const char*>(address(d->d_un.d_ptr)); break;
      case DT_JMPREL: tables[0] = reinterpret_cast<const ElfW(Rela)*>(address(d->d_un.d_ptr)); break;
      case DT_PLTRELSZ: sizes[0] = d->d_un.d_val; break;
      case DT_RELA: tables[1] = reinterpret_cast<const ElfW(Rela)*>(address(d->d_un.d_ptr)); break;
      case DT_RELASZ: sizes[1] = d->d_un.d_val; break;
      case DT_PLTREL: rela = d->d_un.d_val == DT_RELA; break;
      default: break;
    }
  }
  if (!symtab || !strtab || !rela) return 1;   // (REL relocations: 32-bit x86 and ARM; not looked at)
  for (int t = 0; t < 2; ++t) {
    for (size_t i = 0; tables[t] && i < sizes[t] / sizeof(ElfW(Rela)); ++i) {
#if __SIZEOF_POINTER__ == 8
      const size_t sym = ELF64_R_SYM(tables[t][i].r_info);
#else
      const size_t sym = ELF32_R_SYM(tables[t][i].r_info);
#endif
      if (sym == 0 || std::strcmp(strtab + symtab[sym].st_name, lookup->symbol) != 0) continue;
      lookup->target = *reinterpret_cast<const uintptr_t*>(info->dlpi_addr + tables[t][i].r_offset);
      return 1;
    }
  }
  return 1;
}

// The file of the loaded object that holds `address`; empty when none does.
std::string object_of(const void* address) {
  Dl_info info{};
  if (!address || !dladdr(address, &info) || !info.dli_fname) return std::string();
  return info.dli_fname;
}

}  // namespace

std::string mixed_unwinders() {
  GotLookup lookup{"_Unwind_RaiseException"};
  dl_iterate_phdr(find_in_libstdcxx, &lookup);
  const std::string raises = object_of(reinterpret_cast<const void*>(lookup.target));
  // What this plugin's (and LibTorch's, loaded with it) landing pads call.
  const std::string resumes = object_of(reinterpret_cast<const void*>(&_Unwind_Resume));
  if (raises.empty() || resumes.empty() || raises == resumes || std::strstr(raises.c_str(), "libstdc++.so"))
    return std::string();
  return "C++ exceptions cannot be caught in this process: libstdc++ raises them with " + raises +
         ", and this plugin (loaded later) would resume them with " + resumes +
         " (loaded with GStreamer), as when a Python program imports a module that uses C++ (PIL, torch) "
         "before GStreamer. An error in ssddetect (a bad property value or model file) would then abort the "
         "process instead of being reported. Import GStreamer (gi.repository.Gst) first, or start the "
         "program with LD_PRELOAD=libgcc_s.so.1.";
}

}  // namespace gstssd
