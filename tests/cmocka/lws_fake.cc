// The __wrap_lws_* definitions the linker substitutes for libwebsockets (see lws_fake.h).
// Each mimics the contract lws documents for the call, as far as the edge relies on it.
#include "tests/cmocka/lws_fake.h"

#include <algorithm>
#include <cstring>
#include <ctime>

namespace wsfleet::fake {
namespace {

FakeLws g_state;
char g_context_storage;  // only its address is used

FakeWsi& fakeOf(lws* wsi) {
  return *reinterpret_cast<FakeWsi*>(wsi);
}

const std::string* headerOf(lws* wsi, lws_token_indexes h) {
  FakeWsi& fake = fakeOf(wsi);
  auto it = fake.headers.find(h);
  return it == fake.headers.end() ? nullptr : &it->second;
}

bool isHttpWrite(lws_write_protocol protocol) {
  const int base = static_cast<int>(protocol) & 0x1f;
  return base == LWS_WRITE_HTTP || base == LWS_WRITE_HTTP_FINAL;
}

// Copies `value` with its NUL; lws refuses (-1) when it does not fit.
int copyOut(const std::string& value, char* dest, int len) {
  if (len <= 0 || value.size() >= static_cast<size_t>(len)) return -1;
  std::memcpy(dest, value.data(), value.size());
  dest[value.size()] = '\0';
  return static_cast<int>(value.size());
}

}  // namespace

std::string FakeWsi::httpBody() const {
  std::string body;
  for (const WrittenFrame& frame : writes) {
    if (isHttpWrite(frame.protocol)) body += frame.bytes;
  }
  return body;
}

void advanceClock(int64_t ms) {
  g_state.clock_offset_ms += ms;
}

FakeLws& state() {
  return g_state;
}
void reset() {
  g_state = FakeLws{};
}
lws_context* fakeContext() {
  return reinterpret_cast<lws_context*>(&g_context_storage);
}

}  // namespace wsfleet::fake

using wsfleet::fake::fakeContext;
using wsfleet::fake::FakeWsi;
using wsfleet::fake::state;

extern "C" {

using LogEmit = void (*)(int level, const char* line);
void __real_lws_set_log_level(int level, LogEmit log_emit_function);
int __real_clock_gettime(clockid_t clock, timespec* ts);

// ---- time ----

int __wrap_clock_gettime(clockid_t clock, timespec* ts) {
  const int rc = __real_clock_gettime(clock, ts);
  const int64_t offset_ms = state().clock_offset_ms;
  if (rc == 0 && offset_ms != 0 && (clock == CLOCK_MONOTONIC || clock == CLOCK_REALTIME)) {
    const int64_t ns = int64_t{ts->tv_nsec} + (offset_ms % 1000) * 1000000;
    ts->tv_sec += static_cast<time_t>(offset_ms / 1000 + ns / 1000000000);
    ts->tv_nsec = static_cast<long>(ns % 1000000000);
  }
  return rc;
}

// ---- context, vhosts, service loop ----

lws_context* __wrap_lws_create_context(const lws_context_creation_info* info) {
  state().context_user = info->user;
  state().context_port = static_cast<unsigned int>(info->port);
  state().context_options = info->options;
  state().foreign_loop = info->foreign_loops != nullptr ? info->foreign_loops[0] : nullptr;
  ++state().contexts_created;
  return fakeContext();
}

lws_vhost* __wrap_lws_create_vhost(lws_context* context, const lws_context_creation_info* info) {
  if (context != fakeContext() || info->vhost_name == nullptr) return nullptr;
  const std::string name = info->vhost_name;
  if (name == state().fail_vhost) return nullptr;
  wsfleet::fake::FakeLws::Vhost& vhost = state().vhosts[name];
  vhost.protocols = info->protocols;
  vhost.port = info->port;
  vhost.iface = info->iface != nullptr ? info->iface : "";
  vhost.options = info->options;
  // Any distinct non-null pointer: the edge never looks inside a vhost.
  return reinterpret_cast<lws_vhost*>(&state().vhosts[name]);
}

void __wrap_lws_context_destroy(lws_context* context) {
  if (context == fakeContext()) ++state().contexts_destroyed;
}

void __wrap_lws_sul_schedule(lws_context* context, int, lws_sorted_usec_list_t* sul, sul_cb_t cb,
                             lws_usec_t us) {
  if (context != fakeContext()) return;
  state().tick_sul = sul;
  state().tick_cb = cb;
  state().tick_us = us;
  ++state().ticks_scheduled;
}

int __wrap_lws_rx_flow_control(lws* wsi, int enable) {
  reinterpret_cast<FakeWsi*>(wsi)->rx_paused = enable == 0;
  return 0;
}

// The tests drive callbacks directly and never accept; an adopted socket is just closed.
lws* __wrap_lws_adopt_socket_vhost(lws_vhost*, lws_sockfd_type fd) {
  close(fd);
  return nullptr;
}

void* __wrap_lws_context_user(lws_context* context) {
  return context == fakeContext() ? state().context_user : nullptr;
}

lws_context* __wrap_lws_get_context(const lws* wsi) {
  return wsi != nullptr ? fakeContext() : nullptr;
}

// Harmless and keeps lws's own logging configured as the edge asked.
void __wrap_lws_set_log_level(int level, LogEmit log_emit_function) {
  __real_lws_set_log_level(level, log_emit_function);
}

// ---- WebSocket data path ----

int __wrap_lws_write(lws* wsi, unsigned char* buf, size_t len, lws_write_protocol protocol) {
  FakeWsi& fake = *reinterpret_cast<FakeWsi*>(wsi);
  fake.writes.push_back({std::string(reinterpret_cast<const char*>(buf), len), protocol});
  if (fake.write_result) return *fake.write_result;
  return static_cast<int>(len);
}

int __wrap_lws_partial_buffered(lws* wsi) {
  return reinterpret_cast<FakeWsi*>(wsi)->partial ? 1 : 0;
}

int __wrap_lws_callback_on_writable(lws* wsi) {
  ++reinterpret_cast<FakeWsi*>(wsi)->writable_requests;
  return 1;
}

void __wrap_lws_close_reason(lws* wsi, lws_close_status status, unsigned char* buf, size_t len) {
  std::string reason;
  if (buf != nullptr) reason.assign(reinterpret_cast<const char*>(buf), len);
  reinterpret_cast<FakeWsi*>(wsi)->closes.push_back({static_cast<int>(status), reason});
}

int __wrap_lws_frame_is_binary(lws* wsi) {
  return reinterpret_cast<FakeWsi*>(wsi)->binary;
}

size_t __wrap_lws_remaining_packet_payload(lws* wsi) {
  return reinterpret_cast<FakeWsi*>(wsi)->remaining;
}

int __wrap_lws_is_final_fragment(lws* wsi) {
  return reinterpret_cast<FakeWsi*>(wsi)->final_fragment;
}

const char* __wrap_lws_get_peer_simple(lws* wsi, char* name, size_t namelen) {
  const std::string& peer = reinterpret_cast<FakeWsi*>(wsi)->peer;
  if (namelen == 0) return nullptr;
  const size_t n = std::min(peer.size(), namelen - 1);
  std::memcpy(name, peer.data(), n);
  name[n] = '\0';
  return name;
}

int __wrap_lws_get_socket_fd(lws* wsi) {
  return reinterpret_cast<FakeWsi*>(wsi)->fd;
}

void __wrap_lws_set_timeout(lws* wsi, pending_timeout reason, int secs) {
  reinterpret_cast<FakeWsi*>(wsi)->timeouts.emplace_back(static_cast<int>(reason), secs);
}

// ---- request headers ----

int __wrap_lws_hdr_total_length(lws* wsi, lws_token_indexes h) {
  FakeWsi& fake = *reinterpret_cast<FakeWsi*>(wsi);
  if (h == WSI_TOKEN_HTTP_URI_ARGS) {
    int total = 0;
    for (const std::string& arg : fake.uri_args) total += static_cast<int>(arg.size());
    return total;
  }
  const std::string* value = wsfleet::fake::headerOf(wsi, h);
  return value != nullptr ? static_cast<int>(value->size()) : 0;
}

int __wrap_lws_hdr_copy(lws* wsi, char* dest, int len, lws_token_indexes h) {
  const std::string* value = wsfleet::fake::headerOf(wsi, h);
  if (value == nullptr) {
    if (len > 0) dest[0] = '\0';
    return 0;
  }
  return wsfleet::fake::copyOut(*value, dest, len);
}

int __wrap_lws_hdr_copy_fragment(lws* wsi, char* dest, int len, lws_token_indexes h, int frag_idx) {
  FakeWsi& fake = *reinterpret_cast<FakeWsi*>(wsi);
  if (h != WSI_TOKEN_HTTP_URI_ARGS || frag_idx < 0 ||
      static_cast<size_t>(frag_idx) >= fake.uri_args.size()) {
    return -1;
  }
  return wsfleet::fake::copyOut(fake.uri_args[static_cast<size_t>(frag_idx)], dest, len);
}

// As lws does it: the first URI argument fragment starting with `name` ("key="), the
// returned pointer is just past the name inside `buf`.
const char* __wrap_lws_get_urlarg_by_name(lws* wsi, const char* name, char* buf, int len) {
  const size_t name_len = std::strlen(name);
  FakeWsi& fake = *reinterpret_cast<FakeWsi*>(wsi);
  for (const std::string& arg : fake.uri_args) {
    if (arg.compare(0, name_len, name) != 0) continue;
    if (wsfleet::fake::copyOut(arg, buf, len) < 0) return nullptr;
    return buf + name_len;
  }
  return nullptr;
}

// ---- HTTP responses ----

int __wrap_lws_add_http_common_headers(lws* wsi, unsigned int code, const char* content_type,
                                       lws_filepos_t content_len, unsigned char**, unsigned char*) {
  FakeWsi& fake = *reinterpret_cast<FakeWsi*>(wsi);
  fake.http_status = static_cast<int>(code);
  fake.content_type = content_type != nullptr ? content_type : "";
  fake.content_length = content_len;
  return 0;
}

int __wrap_lws_add_http_header_by_name(lws* wsi, const unsigned char* name,
                                       const unsigned char* value, int length, unsigned char**,
                                       unsigned char*) {
  FakeWsi& fake = *reinterpret_cast<FakeWsi*>(wsi);
  fake.http_headers.emplace_back(
      reinterpret_cast<const char*>(name),
      std::string(reinterpret_cast<const char*>(value), static_cast<size_t>(length)));
  return 0;
}

int __wrap_lws_finalize_write_http_header(lws* wsi, unsigned char*, unsigned char**,
                                          unsigned char*) {
  ++reinterpret_cast<FakeWsi*>(wsi)->headers_finalized;
  return 0;
}

int __wrap_lws_http_transaction_completed(lws* wsi) {
  FakeWsi& fake = *reinterpret_cast<FakeWsi*>(wsi);
  ++fake.transactions_completed;
  return fake.transaction_completed_result;
}

int __wrap_lws_callback_http_dummy(lws* wsi, lws_callback_reasons, void*, void*, size_t) {
  if (wsi != nullptr) ++reinterpret_cast<FakeWsi*>(wsi)->dummy_callbacks;
  return 0;
}

}  // extern "C"
