#include "core/events/active_load_codec.h"

#include "core/events/codec_support.h"

namespace kvmock {
namespace {

using codec::Kind;
using codec::Path;

template <class N>
Result<ActiveLoad> read_active_load(const N& root) {
  const Path root_path;
  KVMOCK_RETURN_IF_ERROR(codec::expect_kind(root, Kind::kMap, root_path));
  ActiveLoad load;
  const Path worker_path = root_path.field("worker_id");
  KVMOCK_ASSIGN_OR_RETURN(N worker, codec::require_field(root, "worker_id", worker_path));
  KVMOCK_ASSIGN_OR_RETURN(load.worker_id, codec::read_u64(worker, worker_path));
  KVMOCK_ASSIGN_OR_RETURN(load.dp_rank,
                          codec::read_defaulted_u32(root, "dp_rank", root_path.field("dp_rank")));
  KVMOCK_ASSIGN_OR_RETURN(load.active_decode_blocks,
                          codec::read_optional_u64(root, "active_decode_blocks",
                                                   root_path.field("active_decode_blocks")));
  KVMOCK_ASSIGN_OR_RETURN(load.active_prefill_tokens,
                          codec::read_optional_u64(root, "active_prefill_tokens",
                                                   root_path.field("active_prefill_tokens")));
  KVMOCK_ASSIGN_OR_RETURN(
      load.kv_used_blocks,
      codec::read_optional_u64(root, "kv_used_blocks", root_path.field("kv_used_blocks")));
  return load;
}

// One field list for both formats.
template <class W>
void write_active_load(const ActiveLoad& load, W& w) {
  w.begin_map(5);
  w.key("worker_id");
  w.u64(load.worker_id);
  w.key("dp_rank");
  w.u64(load.dp_rank);
  w.key("active_decode_blocks");
  w.optional_u64(load.active_decode_blocks);
  w.key("active_prefill_tokens");
  w.optional_u64(load.active_prefill_tokens);
  w.key("kv_used_blocks");
  w.optional_u64(load.kv_used_blocks);
  w.end_map();
}

}  // namespace

void encode_active_load_msgpack(const ActiveLoad& load, std::vector<uint8_t>& out) {
  codec::MsgpackWriter w(out);
  write_active_load(load, w);
}

std::vector<uint8_t> encode_active_load_msgpack(const ActiveLoad& load) {
  std::vector<uint8_t> out;
  out.reserve(112);
  encode_active_load_msgpack(load, out);
  return out;
}

Result<ActiveLoad> decode_active_load_msgpack(std::span<const uint8_t> bytes) {
  auto handle = codec::unpack_msgpack(bytes);
  if (!handle) return handle.error();
  return read_active_load(codec::MsgNode{&handle->get()});
}

void encode_active_load_json(const ActiveLoad& load, std::string& out) {
  codec::JsonWriter w(out);
  write_active_load(load, w);
}

std::string encode_active_load_json(const ActiveLoad& load) {
  std::string out;
  out.reserve(160);
  encode_active_load_json(load, out);
  return out;
}

Result<ActiveLoad> decode_active_load_json(std::string_view json) {
  auto doc = codec::parse_json(json);
  if (!doc) return doc.error();
  return read_active_load(codec::JsonNode{&*doc});
}

}  // namespace kvmock
