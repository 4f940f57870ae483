/** The Worker imports the engine as a compiled module (esbuild copies the file; workerd compiles it). */
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
