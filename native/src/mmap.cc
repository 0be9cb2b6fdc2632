// Memory-mapped weight files: byte ranges of one or more files (a weight that runs over several shard files) mapped
// into one contiguous region and handed to JavaScript as an external ArrayBuffer, unmapped when that buffer is
// garbage-collected. The mapping is private and writable (MAP_PRIVATE | PROT_READ | PROT_WRITE): nothing ever
// reaches the file, and code that writes into a tensor's array (TF.js kernels never do) gets a private copy of the
// page instead of a crash. Pages are read from the page cache on first touch, so untouched rows of a token table
// never become resident.
#include <fcntl.h>
#include <node_api.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "args.h"
#include "kernels.h"

namespace siglip2 {

namespace {

struct Region {
  uint8_t* base;     // start of the whole reservation (page-aligned)
  size_t reserved;   // bytes reserved
  uint8_t* data;     // first byte handed to JavaScript
  size_t length;     // bytes handed to JavaScript
};

std::mutex regions_mutex;
std::map<uintptr_t, Region*> regions;  // by data start
size_t mapped_bytes = 0;

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

std::string string_of(const Args& args, napi_value v, const char* what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(args.env(), v, nullptr, 0, &len) != napi_ok) {
    args.fail(std::string(what) + " must be a string");
  }
  std::string s(len, '\0');
  napi_get_value_string_utf8(args.env(), v, s.data(), len + 1, &len);
  return s;
}

int64_t int_of(const Args& args, napi_value v, const std::string& what, int64_t min) {
  double d = 0;
  if (napi_get_value_double(args.env(), v, &d) != napi_ok) args.fail(what + " must be a number");
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(min)) {
    args.fail(what + " must be an integer >= " + std::to_string(min) + ", got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

std::vector<napi_value> array_of(const Args& args, napi_value v, const char* what) {
  bool is_array = false;
  napi_is_array(args.env(), v, &is_array);
  if (!is_array) args.fail(std::string(what) + " must be an array");
  uint32_t n = 0;
  napi_get_array_length(args.env(), v, &n);
  std::vector<napi_value> out(n);
  for (uint32_t i = 0; i < n; i++) napi_get_element(args.env(), v, i, &out[i]);
  return out;
}

napi_value arg(napi_env env, napi_callback_info info, size_t i) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (i >= argc) {
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
  }
  return argv[i];
}

void unmap_region(Region* r) {
  munmap(r->base, r->reserved);
  {
    std::lock_guard<std::mutex> lock(regions_mutex);
    regions.erase(reinterpret_cast<uintptr_t>(r->data));
    mapped_bytes -= r->length;
  }
  delete r;
}

void finalize_region(napi_env, void*, void* hint) { unmap_region(static_cast<Region*>(hint)); }

struct Piece {
  std::string path;
  int64_t offset;
  int64_t length;
};

// mapFiles(paths, offsets, lengths, elementBytes, random) -> ArrayBuffer over the concatenated byte ranges.
// random: rows are read here and there (a token table): no readahead, and no huge-page mappings, which would make
// 2 MiB resident for every row read.
napi_value map_files_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "mapFiles", 5);
  const std::vector<napi_value> paths = array_of(args, arg(env, info, 0), "paths");
  const std::vector<napi_value> offsets = array_of(args, arg(env, info, 1), "offsets");
  const std::vector<napi_value> lengths = array_of(args, arg(env, info, 2), "lengths");
  const int64_t element = args.int_at(3, "elementBytes", 1);
  const bool random = args.is_null(4) ? false : args.bool_at(4, "random");
  if (paths.empty()) args.fail("no file to map");
  if (offsets.size() != paths.size() || lengths.size() != paths.size()) {
    args.fail("paths, offsets and lengths differ in length");
  }
  std::vector<Piece> pieces;
  int64_t total = 0;
  for (size_t i = 0; i < paths.size(); i++) {
    Piece p;
    p.path = string_of(args, paths[i], "paths[i]");
    p.offset = int_of(args, offsets[i], p.path + ": offset", 0);
    p.length = int_of(args, lengths[i], p.path + ": length", 1);
    total += p.length;
    pieces.push_back(std::move(p));
  }
  const size_t page = page_size();
  const size_t lead = static_cast<size_t>(pieces[0].offset) % page;
  if (pieces[0].offset % element != 0) {
    args.fail(pieces[0].path + ": offset " + std::to_string(pieces[0].offset) + " is not a multiple of " +
              std::to_string(element) + " bytes (misaligned data cannot be mapped as " +
              std::to_string(element) + "-byte values)");
  }
  if (total % element != 0) {
    args.fail(pieces[0].path + ": " + std::to_string(total) + " bytes are not a whole number of " +
              std::to_string(element) + "-byte values");
  }
  // Every piece after the first must start on a page boundary both in its file and in the region.
  size_t at = lead;
  for (size_t i = 0; i < pieces.size(); i++) {
    if (i > 0 && (at % page != 0 || static_cast<size_t>(pieces[i].offset) % page != 0)) {
      args.fail(pieces[i].path + ": cannot continue the mapping of " + pieces[i - 1].path +
                " (the range does not start on a page boundary: shard sizes must be multiples of " +
                std::to_string(page) + " bytes to map a weight that spans files)");
    }
    at += static_cast<size_t>(pieces[i].length);
  }
  // Open and size-check every file before mapping anything.
  std::vector<Fd> fds(pieces.size());
  for (size_t i = 0; i < pieces.size(); i++) {
    const Piece& p = pieces[i];
    fds[i].fd = open(p.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fds[i].fd < 0) args.fail(p.path + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st;
    if (fstat(fds[i].fd, &st) != 0) args.fail(p.path + ": cannot stat (" + std::strerror(errno) + ")");
    if (!S_ISREG(st.st_mode)) args.fail(p.path + ": not a regular file");
    if (p.offset + p.length > static_cast<int64_t>(st.st_size)) {
      args.fail(p.path + ": file is " + std::to_string(st.st_size) + " bytes, bytes [" + std::to_string(p.offset) +
                ", " + std::to_string(p.offset + p.length) + ") are beyond its end (truncated file?)");
    }
  }
  const size_t reserved = (lead + static_cast<size_t>(total) + page - 1) / page * page;
  void* base = mmap(nullptr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    args.fail(pieces[0].path + ": cannot reserve " + std::to_string(reserved) + " bytes of address space (" +
              std::strerror(errno) + ")");
  }
  uint8_t* b = static_cast<uint8_t*>(base);
  size_t pos = 0;  // where piece i starts in the reservation
  for (size_t i = 0; i < pieces.size(); i++) {
    const Piece& p = pieces[i];
    const size_t skip = i == 0 ? lead : 0;
    void* got = mmap(b + pos, skip + static_cast<size_t>(p.length), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fds[i].fd, static_cast<off_t>(p.offset - skip));
    if (got == MAP_FAILED) {
      const int err = errno;
      munmap(base, reserved);
      args.fail(p.path + ": mmap failed (" + std::strerror(err) + ")");
    }
    pos += skip + static_cast<size_t>(p.length);
  }
  if (random) {
    madvise(base, reserved, MADV_RANDOM);
    madvise(base, reserved, MADV_NOHUGEPAGE);
  }
  Region* r = new Region{b, reserved, b + lead, static_cast<size_t>(total)};
  napi_value result;
  const napi_status status =
      napi_create_external_arraybuffer(env, r->data, r->length, finalize_region, r, &result);
  if (status != napi_ok) {
    munmap(base, reserved);
    delete r;
    if (status == napi_no_external_buffers_allowed) {
      args.fail("this runtime does not allow external ArrayBuffers (V8 sandbox): weights cannot be mapped");
    }
    args.fail(pieces[0].path + ": cannot create an external ArrayBuffer (napi status " + std::to_string(status) +
              ")");
  }
  {
    std::lock_guard<std::mutex> lock(regions_mutex);
    regions[reinterpret_cast<uintptr_t>(r->data)] = r;
    mapped_bytes += r->length;
  }
  return result;
}

// The mapped region holding [p, p + n), or nullptr.
Region* region_of(const uint8_t* p, size_t n) {
  std::lock_guard<std::mutex> lock(regions_mutex);
  auto it = regions.upper_bound(reinterpret_cast<uintptr_t>(p));
  if (it == regions.begin()) return nullptr;
  --it;
  Region* r = it->second;
  if (p >= r->data && p + n <= r->data + r->length) return r;
  return nullptr;
}

void typed_array_bytes(const Args& args, napi_value v, uint8_t** data, size_t* bytes) {
  bool is_ta = false;
  napi_is_typedarray(args.env(), v, &is_ta);
  if (!is_ta) args.fail("expected a typed array");
  napi_typedarray_type type;
  size_t length = 0;
  void* d = nullptr;
  napi_value buffer;
  size_t offset = 0;
  napi_get_typedarray_info(args.env(), v, &type, &length, &d, &buffer, &offset);
  size_t size = 1;
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array: size = 2; break;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: size = 4; break;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array: size = 8; break;
    default: size = 1;
  }
  *data = static_cast<uint8_t*>(d);
  *bytes = length * size;
}

// isMapped(typedArray) -> whether its bytes lie in a mapping made by mapFiles.
napi_value is_mapped_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "isMapped", 1);
  uint8_t* p = nullptr;
  size_t n = 0;
  typed_array_bytes(args, arg(env, info, 0), &p, &n);
  napi_value v;
  napi_get_boolean(env, p != nullptr && region_of(p, n) != nullptr, &v);
  return v;
}

// Whether every resident page of [start, start + n) still comes from the file (none was copied on write), from
// /proc/self/pagemap (bit 61: file page or shared anonymous; bit 63: present). False when it cannot tell.
bool all_file_pages(const uint8_t* start, size_t n) {
  const size_t page = page_size();
  Fd f;
  f.fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return false;
  const size_t first = reinterpret_cast<uintptr_t>(start) / page;
  const size_t count = n / page;
  std::vector<uint64_t> entries(4096);
  for (size_t done = 0; done < count;) {
    const size_t k = std::min(entries.size(), count - done);
    const ssize_t got = pread(f.fd, entries.data(), k * 8, static_cast<off_t>((first + done) * 8));
    if (got != static_cast<ssize_t>(k * 8)) return false;
    for (size_t i = 0; i < k; i++) {
      const uint64_t e = entries[i];
      const bool present = (e >> 63) & 1;
      const bool file = (e >> 61) & 1;
      if (present && !file) return false;
    }
    done += k;
  }
  return true;
}

// releasePages(typedArray) -> bytes dropped from this process (0 when the array is not mapped, or when a page of it
// was written to: a private copy would be lost). The pages stay in the page cache; a later read faults them in
// again from the file. For weights whose values live on elsewhere (e.g. in a pre-packed copy).
napi_value release_pages_body(napi_env env, napi_callback_info info) {
  Args args(env, info, "releasePages", 1);
  uint8_t* p = nullptr;
  size_t n = 0;
  typed_array_bytes(args, arg(env, info, 0), &p, &n);
  double released = 0;
  if (p != nullptr && n > 0 && region_of(p, n) != nullptr) {
    const size_t page = page_size();
    const uintptr_t s = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
    const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
    if (e > s) {
      uint8_t* start = reinterpret_cast<uint8_t*>(s);
      const size_t len = e - s;
      if (all_file_pages(start, len) && madvise(start, len, MADV_DONTNEED) == 0) {
        released = static_cast<double>(len);
      }
    }
  }
  napi_value v;
  napi_create_double(env, released, &v);
  return v;
}

// mappedStats() -> { regions, bytes } alive now, and the page size.
napi_value mapped_stats_body(napi_env env, napi_callback_info) {
  size_t count, bytes;
  {
    std::lock_guard<std::mutex> lock(regions_mutex);
    count = regions.size();
    bytes = mapped_bytes;
  }
  napi_value obj, a, b, c;
  napi_create_object(env, &obj);
  napi_create_double(env, static_cast<double>(count), &a);
  napi_create_double(env, static_cast<double>(bytes), &b);
  napi_create_double(env, static_cast<double>(page_size()), &c);
  napi_set_named_property(env, obj, "regions", a);
  napi_set_named_property(env, obj, "bytes", b);
  napi_set_named_property(env, obj, "pageSize", c);
  return obj;
}

}  // namespace

napi_value MapFiles(napi_env env, napi_callback_info info) { return guard(env, "mapFiles", map_files_body, info); }
napi_value IsMapped(napi_env env, napi_callback_info info) { return guard(env, "isMapped", is_mapped_body, info); }
napi_value ReleasePages(napi_env env, napi_callback_info info) {
  return guard(env, "releasePages", release_pages_body, info);
}
napi_value MappedStats(napi_env env, napi_callback_info info) {
  return guard(env, "mappedStats", mapped_stats_body, info);
}

}  // namespace siglip2
