// What bun.ts binds with bun:ffi: the C functions of include/opencode_share.h it calls, in
// bun:ffi's types (no callbacks: bun.ts polls) (test/header.mjs checks them against the header). Kept apart
// from bun.ts, which imports "bun:ffi", so that the check runs in Node too.

export const SYMBOLS = {
  share_init: { args: ["ptr"], returns: "i32" },
  share_sync_queued: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  share_sync_pending: { args: ["ptr", "ptr"], returns: "i32" },
  share_create_async: { args: ["ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  share_remove_async: { args: ["ptr", "ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  share_op_take: { args: ["u32", "ptr"], returns: "i32" },
  share_op_pending: { args: ["u32", "ptr"], returns: "i32" },
  share_flush_async: { args: ["u32", "ptr", "ptr", "ptr"], returns: "i32" },
  share_flush: { args: ["u32"], returns: "i32" },
  share_shutdown: { args: ["u32"], returns: "i32" },
  share_stats: { args: ["ptr"], returns: "i32" },
  share_list: { args: ["ptr"], returns: "i32" },
  share_remove_known_async: { args: ["ptr", "ptr", "ptr", "ptr"], returns: "i32" },
  share_events_take: { args: ["ptr"], returns: "i32" },
  share_set_event_callback: { args: ["ptr", "ptr"], returns: "i32" },
  share_set_event_polling: { args: [], returns: "i32" },
  share_last_error: { args: [], returns: "ptr" },
  share_version: { args: [], returns: "ptr" },
  share_string_free: { args: ["ptr"], returns: "void" },
} as const;
