// kernels/emulation/kernel_names.cpp — a kernel's name for error messages, from its address: the dynamic symbol
// table (dladdr) or, for functions with internal linkage (kernels in anonymous namespaces), the executable's own
// symbol table read from /proc/self/exe. Demangled, without the parameter list.
#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/emulation/cuda_emulation.h"

namespace tinyds::cuda::emu {

namespace {

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : name;
  std::free(d);
  // Drop the parameter list: from the '(' that matches the final ')'.
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (size_t i = s.size(); i-- > 0;) {
      depth += s[i] == ')' ? 1 : s[i] == '(' ? -1 : 0;
      if (depth == 0) {
        s.resize(i);
        break;
      }
    }
  }
  const std::string anon = "(anonymous namespace)::";
  for (size_t i; (i = s.find(anon)) != std::string::npos;) s.erase(i, anon.size());
  return s;
}

std::string elf_symbol_name(const void* address) {
  uintptr_t bias = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        *static_cast<uintptr_t*>(out) = info->dlpi_addr;  // the first object listed is the executable
        return 1;
      },
      &bias);
  const int fd = open("/proc/self/exe", O_RDONLY);
  if (fd < 0) return "";
  std::string found;
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) == sizeof eh && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0) {
    std::vector<Elf64_Shdr> sh(eh.e_shnum);
    const ssize_t want = static_cast<ssize_t>(sizeof(Elf64_Shdr) * eh.e_shnum);
    if (pread(fd, sh.data(), want, static_cast<off_t>(eh.e_shoff)) == want) {
      for (const Elf64_Shdr& s : sh) {
        if (s.sh_type != SHT_SYMTAB || s.sh_link >= sh.size()) continue;
        std::vector<Elf64_Sym> syms(s.sh_size / sizeof(Elf64_Sym));
        const Elf64_Shdr& strs = sh[s.sh_link];
        std::vector<char> names(strs.sh_size + 1, '\0');
        if (pread(fd, syms.data(), s.sh_size, static_cast<off_t>(s.sh_offset)) != static_cast<ssize_t>(s.sh_size) ||
            pread(fd, names.data(), strs.sh_size, static_cast<off_t>(strs.sh_offset)) !=
                static_cast<ssize_t>(strs.sh_size))
          break;
        for (const Elf64_Sym& sym : syms) {
          if (ELF64_ST_TYPE(sym.st_info) == STT_FUNC && sym.st_value + bias == reinterpret_cast<uintptr_t>(address) &&
              sym.st_name < strs.sh_size) {
            found = demangle(&names[sym.st_name]);
            break;
          }
        }
      }
    }
  }
  close(fd);
  return found;
}

}  // namespace

std::string function_name(const void* address) {
  static std::mutex m;
  static std::map<const void*, std::string> cache;
  std::lock_guard<std::mutex> lock(m);
  auto it = cache.find(address);
  if (it != cache.end()) return it->second;
  std::string name;
  Dl_info info;
  if (dladdr(address, &info) && info.dli_sname && info.dli_saddr == address) name = demangle(info.dli_sname);
  if (name.empty()) name = elf_symbol_name(address);
  if (name.empty()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "at %p", address);
    name = buf;
  }
  return cache[address] = name;
}

}  // namespace tinyds::cuda::emu
