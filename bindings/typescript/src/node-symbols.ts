// What node.ts binds with koffi: the C functions of include/opencode_share.h it calls and its two
// callback prototypes, as koffi declarations (test/header.mjs checks them against the header).
// They differ from the header on purpose where koffi needs it: `_Out_` marks out-parameters
// koffi writes back into an array, char ** out-strings are read as `void **` (decoded, then freed
// once), bool * is a reused `uint8_t *`, and enum share_status is its C type, int32_t.

export const FUNCTIONS = {
  share_init: "int32_t share_init(const char *config_json)",
  // the flag is written into a reused byte that koffi passes by address (no out-array per call)
  share_sync_queued: "int32_t share_sync_queued(const char *key, const char *content_json, uint8_t *out_queued)",
  share_sync_pending: "int32_t share_sync_pending(const char *key, uint8_t *out_pending)",
  share_create_async:
    "int32_t share_create_async(const char *session_id, share_op_callback *callback, void *user_data, _Out_ uint32_t *out_op_id)",
  share_remove_async:
    "int32_t share_remove_async(const char *session_id, const char *secret, share_op_callback *callback, void *user_data, _Out_ uint32_t *out_op_id)",
  // char ** out-parameters are read as plain pointers: the string is decoded, then freed once
  share_op_take: "int32_t share_op_take(uint32_t op_id, _Out_ void **out_json)",
  share_flush_async:
    "int32_t share_flush_async(uint32_t timeout_ms, share_op_callback *callback, void *user_data, _Out_ uint32_t *out_op_id)",
  share_flush: "int32_t share_flush(uint32_t timeout_ms)",
  share_shutdown: "int32_t share_shutdown(uint32_t timeout_ms)",
  share_stats: "int32_t share_stats(_Out_ void **out_json)",
  share_list: "int32_t share_list(_Out_ void **out_json)",
  share_remove_known_async:
    "int32_t share_remove_known_async(const char *session_id, share_op_callback *callback, void *user_data, _Out_ uint32_t *out_op_id)",
  share_events_take: "int32_t share_events_take(_Out_ void **out_json)",
  share_set_event_callback: "int32_t share_set_event_callback(share_event_notify *notify, void *user_data)",
  share_last_error: "const char *share_last_error(void)",
  share_version: "const char *share_version(void)",
  share_string_free: "void share_string_free(void *s)",
} as const;

/** The callback typedefs, as koffi prototypes. */
export const CALLBACKS = {
  share_op_callback: "void share_op_callback(void *user_data, uint32_t op_id, int32_t status)",
  share_event_notify: "void share_event_notify(void *user_data)",
} as const;
