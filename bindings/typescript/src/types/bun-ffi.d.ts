// The few declarations of Bun's "bun:ffi" that src/bun.ts uses, so that tsc compiles it without
// a dependency on bun-types. Bun provides the module at run time.
declare module "bun:ffi" {
  export type Pointer = number;
  export type FFITypeName = "i32" | "u32" | "u64" | "ptr" | "cstring" | "void" | "function";
  export interface FFIFunction {
    args?: readonly FFITypeName[];
    returns?: FFITypeName;
  }
  export interface Library<Fns extends Record<string, FFIFunction>> {
    symbols: { [K in keyof Fns]: (...args: any[]) => any };
    close(): void;
  }
  export function dlopen<Fns extends Record<string, FFIFunction>>(path: string, symbols: Fns): Library<Fns>;
  export class CString extends String {
    constructor(ptr: Pointer, byteOffset?: number, byteLength?: number);
  }
  export class JSCallback {
    constructor(callback: (...args: any[]) => any, definition: FFIFunction & { threadsafe?: boolean });
    readonly ptr: Pointer | null;
    close(): void;
  }
}
