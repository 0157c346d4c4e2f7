// tinyds/train/safetensors.cpp — reading and writing the safetensors format (see safetensors.h).
//
// File layout (all integers little-endian):
//   [0, 8)            u64 N: length of the JSON header in bytes
//   [8, 8+N)          JSON header, padded with spaces so that 8+N is a multiple of 8
//   [8+N, file end)   data section: tensor bytes, tensor k at [8+N+begin_k, 8+N+end_k)
// Shapes: a tensor's `shape` is a list of dims (e.g. (V, C) = [128, 256]); [] is a scalar (numel 1).
// The reader trusts nothing: every field is checked and every byte of the data section must belong to
// exactly one tensor, so a truncated, padded or hand-edited file is an error naming the file and the problem.
#include "tinyds/train/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tinyds/core/error.h"

namespace tinyds {

// The data section is copied byte-for-byte into host floats/ints, which is only right on little-endian hosts.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "tinyds safetensors I/O assumes a little-endian host");
#endif

using json = nlohmann::json;

namespace {

// A header longer than this is treated as corruption (the reference implementation uses the same limit):
// it stops a damaged length field from making us parse (or allocate for) gigabytes of "JSON".
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::size_t dtype_size(DType d) {
  switch (d) {
    case DType::F32: return 4;
    case DType::F64: return 8;
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType& out) {
  for (DType d : {DType::F32, DType::F64, DType::I32, DType::I64})
    if (s == dtype_name(d)) { out = d; return true; }
  return false;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (std::size_t i = 0; i < shape.size(); i++) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

// numel of a shape with every dim checked (>= 0) and the product checked for overflow; errors start with `ctx`.
uint64_t checked_numel(const std::vector<int64_t>& shape, const std::string& ctx) {
  uint64_t n = 1;  // empty shape = scalar
  for (int64_t d : shape) {
    if (d < 0) throw_error(ctx, ": negative dimension ", d, " in shape ", shape_str(shape));
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      throw_error(ctx, ": shape ", shape_str(shape), " has too many elements");
  }
  return n;
}

void put_tensor(SafeTensors& st, const std::string& name, const std::vector<int64_t>& shape, DType dtype,
                const void* data) {
  if (name.empty() || name == "__metadata__")
    throw_error("safetensors: '", name, "' cannot be used as a tensor name");
  uint64_t n = checked_numel(shape, "safetensors: tensor '" + name + "'");
  TensorData t;
  t.dtype = dtype;
  t.shape = shape;
  t.bytes.resize(n * dtype_size(dtype));
  if (!t.bytes.empty()) std::memcpy(t.bytes.data(), data, t.bytes.size());
  st.tensors[name] = std::move(t);
}

// The tensor `name` after checking it exists, has exactly `shape` and one of the `allowed` dtypes.
const TensorData& checked_get(const SafeTensors& st, const std::string& name, const std::vector<int64_t>& shape,
                              std::initializer_list<DType> allowed, const std::string& where) {
  auto it = st.tensors.find(name);
  if (it == st.tensors.end()) throw_error(where, ": tensor '", name, "' is missing");
  const TensorData& t = it->second;
  if (t.shape != shape)
    throw_error(where, ": tensor '", name, "' has shape ", shape_str(t.shape), ", expected ", shape_str(shape));
  bool ok = false;
  std::string names;
  for (DType d : allowed) {
    ok = ok || t.dtype == d;
    names += (names.empty() ? "" : " or ") + std::string(dtype_name(d));
  }
  if (!ok) throw_error(where, ": tensor '", name, "' has dtype ", dtype_name(t.dtype), ", expected ", names);
  // The map is public, so a caller could have put inconsistent bytes in it: check before copying out.
  TINYDS_ASSERT(t.bytes.size() == static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype), "tensor ", name);
  return t;
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// In-memory container
// ----------------------------------------------------------------------------------------------
int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void SafeTensors::put_f32(const std::string& name, const std::vector<int64_t>& shape, const float* data) {
  put_tensor(*this, name, shape, DType::F32, data);
}
void SafeTensors::put_f64(const std::string& name, const std::vector<int64_t>& shape, const double* data) {
  put_tensor(*this, name, shape, DType::F64, data);
}
void SafeTensors::put_i32(const std::string& name, const std::vector<int64_t>& shape, const int32_t* data) {
  put_tensor(*this, name, shape, DType::I32, data);
}

std::vector<float> SafeTensors::get_f32(const std::string& name, const std::vector<int64_t>& shape,
                                        const std::string& where) const {
  const TensorData& t = checked_get(*this, name, shape, {DType::F32, DType::F64}, where);
  std::vector<float> out(static_cast<std::size_t>(t.numel()));
  if (t.dtype == DType::F32) {
    if (!out.empty()) std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  } else {
    for (std::size_t i = 0; i < out.size(); i++) {
      double v;
      std::memcpy(&v, t.bytes.data() + 8 * i, 8);  // memcpy: the byte vector has no double alignment
      out[i] = static_cast<float>(v);
    }
  }
  return out;
}

std::vector<int32_t> SafeTensors::get_i32(const std::string& name, const std::vector<int64_t>& shape,
                                          const std::string& where) const {
  const TensorData& t = checked_get(*this, name, shape, {DType::I32}, where);
  std::vector<int32_t> out(static_cast<std::size_t>(t.numel()));
  if (!out.empty()) std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  return out;
}

const std::vector<int64_t>& SafeTensors::shape_of(const std::string& name, const std::string& where) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw_error(where, ": tensor '", name, "' is missing");
  return it->second.shape;
}

// ----------------------------------------------------------------------------------------------
// Writing
// ----------------------------------------------------------------------------------------------
namespace {

// The JSON header (unpadded); tensors are laid out in name order, back to back from offset 0.
std::string build_header(const SafeTensors& st) {
  json h = json::object();
  json meta = json::object();
  for (const auto& [k, v] : st.metadata) meta[k] = v;
  h["__metadata__"] = meta;
  uint64_t offset = 0;
  for (const auto& [name, t] : st.tensors) {
    std::string ctx = "safetensors: tensor '" + name + "'";
    if (name.empty() || name == "__metadata__") throw_error(ctx, ": reserved or empty tensor name");
    uint64_t want = checked_numel(t.shape, ctx) * dtype_size(t.dtype);
    if (t.bytes.size() != want)
      throw_error(ctx, ": holds ", t.bytes.size(), " bytes but shape ", shape_str(t.shape), " of ",
                  dtype_name(t.dtype), " needs ", want);
    h[name] = json{{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + want}}};
    offset += want;
  }
  return h.dump();
}

}  // namespace

void write_safetensors(const std::string& path, const SafeTensors& st) {
  std::string header = build_header(st);
  // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned, as the format advises.
  header.append((8 - header.size() % 8) % 8, ' ');
  uint64_t n = header.size();
  unsigned char len_le[8];
  for (int i = 0; i < 8; i++) len_le[i] = static_cast<unsigned char>(n >> (8 * i));

  // Write a temporary file and rename it over `path`: a crash mid-write never leaves a half-written checkpoint.
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw_error(path, ": cannot create '", tmp, "' for writing: ", std::strerror(errno));
  int err = 0;  // the first failure's errno; later steps are skipped once it is set
  auto check = [&err](bool ok) { if (!ok && err == 0) err = errno != 0 ? errno : EIO; };
  errno = 0;
  check(std::fwrite(len_le, 1, 8, f) == 8);
  if (!err) check(std::fwrite(header.data(), 1, header.size(), f) == header.size());
  for (auto it = st.tensors.begin(); !err && it != st.tensors.end(); ++it) {
    const std::vector<uint8_t>& b = it->second.bytes;
    check(b.empty() || std::fwrite(b.data(), 1, b.size(), f) == b.size());
  }
  // fsync before rename: otherwise a power loss can leave the *renamed* file with missing data.
  if (!err) check(std::fflush(f) == 0 && ::fsync(fileno(f)) == 0);
  check(std::fclose(f) == 0);
  if (!err) check(std::rename(tmp.c_str(), path.c_str()) == 0);
  if (err) {
    std::remove(tmp.c_str());
    throw_error(path, ": writing the safetensors file (via '", tmp, "') failed: ", std::strerror(err));
  }
}

// ----------------------------------------------------------------------------------------------
// Reading
// ----------------------------------------------------------------------------------------------
namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw_error(path, ": cannot open for reading: ", std::strerror(errno));
  struct stat sb;
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    throw_error(path, ": not a regular file");
  }
  std::vector<uint8_t> buf(static_cast<std::size_t>(sb.st_size));
  std::size_t got = 0;
  while (got < buf.size()) {
    ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int err = errno;
      ::close(fd);
      throw_error(path, ": read failed after ", got, " of ", buf.size(), " bytes: ",
                  r == 0 ? "unexpected end of file" : std::strerror(err));
    }
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  return buf;
}

// A non-negative JSON integer, or an error naming the field.
uint64_t json_uint(const json& v, const std::string& ctx, const char* field) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() < 0) throw_error(ctx, ": ", field, " has negative value ", v.dump());
  throw_error(ctx, ": ", field, " must be a non-negative integer, got ", v.dump());
}

struct Entry {
  std::string name;
  uint64_t begin, end;
};

// Parses and checks one tensor entry of the header; returns its data range (relative to the data section).
Entry parse_entry(const std::string& path, const std::string& name, const json& e, uint64_t data_size,
                  TensorData& t) {
  std::string ctx = path + ": tensor '" + name + "'";
  if (!e.is_object()) throw_error(ctx, ": entry must be a JSON object, got ", e.dump());
  for (auto it = e.begin(); it != e.end(); ++it)
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
      throw_error(ctx, ": unknown field '", it.key(), "'");
  for (const char* f : {"dtype", "shape", "data_offsets"})
    if (!e.contains(f)) throw_error(ctx, ": missing field '", f, "'");
  const json& dt = e["dtype"];
  if (!dt.is_string()) throw_error(ctx, ": field 'dtype' must be a string, got ", dt.dump());
  if (!parse_dtype(dt.get<std::string>(), t.dtype))
    throw_error(ctx, ": unknown dtype '", dt.get<std::string>(), "' (supported: F32, F64, I32, I64)");
  const json& sh = e["shape"];
  if (!sh.is_array()) throw_error(ctx, ": field 'shape' must be an array of integers, got ", sh.dump());
  t.shape.clear();
  for (const json& d : sh) {
    uint64_t u = json_uint(d, ctx, "field 'shape' dimension");
    if (u > static_cast<uint64_t>(INT64_MAX)) throw_error(ctx, ": field 'shape' has a dimension too large: ", u);
    t.shape.push_back(static_cast<int64_t>(u));
  }
  const json& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2)
    throw_error(ctx, ": field 'data_offsets' must be [begin, end], got ", off.dump());
  Entry r{name, json_uint(off[0], ctx, "data_offsets begin"), json_uint(off[1], ctx, "data_offsets end")};
  if (r.begin > r.end) throw_error(ctx, ": data_offsets begin ", r.begin, " is after end ", r.end);
  if (r.end > data_size)
    throw_error(ctx, ": data_offsets end ", r.end, " is beyond the data section (", data_size,
                " bytes; file truncated?)");
  uint64_t want = 0;
  if (__builtin_mul_overflow(checked_numel(t.shape, ctx), dtype_size(t.dtype), &want) || r.end - r.begin != want)
    throw_error(ctx, ": data_offsets [", r.begin, ", ", r.end, "] span ", r.end - r.begin, " bytes but shape ",
                shape_str(t.shape), " of ", dtype_name(t.dtype), " needs ", want);
  return r;
}

// Every byte of the data section must belong to exactly one tensor: no overlaps, no holes, no trailing bytes.
void check_coverage(const std::string& path, std::vector<Entry> entries, uint64_t data_size) {
  // Zero-byte tensors cover nothing, so they can neither overlap nor fill a hole.
  entries.erase(std::remove_if(entries.begin(), entries.end(), [](const Entry& e) { return e.begin == e.end; }),
                entries.end());
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t covered = 0;  // bytes [0, covered) are accounted for
  for (std::size_t i = 0; i < entries.size(); i++) {
    const Entry& e = entries[i];
    if (e.begin < covered)
      throw_error(path, ": tensor '", e.name, "' (bytes ", e.begin, "..", e.end, ") overlaps tensor '",
                  entries[i - 1].name, "' (bytes ", entries[i - 1].begin, "..", entries[i - 1].end, ")");
    if (e.begin > covered)
      throw_error(path, ": data bytes ", covered, "..", e.begin, " belong to no tensor (a hole before tensor '",
                  e.name, "')");
    covered = e.end;
  }
  if (covered != data_size)
    throw_error(path, ": ", data_size - covered, " trailing bytes after the last tensor (data section is ",
                data_size, " bytes, tensors cover ", covered, ")");
}

}  // namespace

SafeTensors read_safetensors(const std::string& path) { return parse_safetensors(read_all(path), path); }

SafeTensors parse_safetensors(const std::vector<uint8_t>& file, const std::string& path) {
  if (file.size() < 8)
    throw_error(path, ": file is ", file.size(), " bytes, too short for the 8-byte safetensors header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | file[i];  // little-endian u64
  if (n > kMaxHeaderBytes)
    throw_error(path, ": header length ", n, " is unreasonably large (limit ", kMaxHeaderBytes,
                "; not a safetensors file, or corrupt)");
  if (n > file.size() - 8)
    throw_error(path, ": header length ", n, " runs past the end of the file (", file.size(), " bytes)");
  json h;
  try {
    h = json::parse(file.begin() + 8, file.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const json::exception& e) {
    throw_error(path, ": header is not valid JSON: ", e.what());
  }
  if (!h.is_object()) throw_error(path, ": header must be a JSON object, got a ", h.type_name());

  SafeTensors st;
  const uint64_t data_size = file.size() - 8 - n;
  const uint8_t* data = file.data() + 8 + n;
  std::vector<Entry> entries;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw_error(path, ": __metadata__ must be an object of strings, got ", it->dump());
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          throw_error(path, ": __metadata__ value of '", m.key(), "' must be a string, got ", m->dump());
        st.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    TensorData& t = st.tensors[it.key()];
    entries.push_back(parse_entry(path, it.key(), it.value(), data_size, t));
    t.bytes.assign(data + entries.back().begin, data + entries.back().end);
  }
  check_coverage(path, entries, data_size);
  return st;
}

}  // namespace tinyds
