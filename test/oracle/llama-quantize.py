"""llama.cpp's own quantizer (llama_model_quantize: what llama-quantize runs, per-tensor mix rules included)
on the libllama node-llama-cpp ships, one thread.

Run: python3 test/oracle/llama-quantize.py IN.gguf OUT.gguf FTYPE   (FTYPE: a llama_ftype number)
"""
import ctypes, glob, sys

BINS = glob.glob('tools/peers/node_modules/@node-llama-cpp/linux-x64/bins/*/')[0]
llama = ctypes.CDLL(glob.glob(BINS + 'libllama.*so')[0])


class Params(ctypes.Structure):
    # llama_model_quantize_params begins with nthread and ftype; the rest is taken as the library
    # fills it (the struct is returned through a pointer, so a larger buffer is safe).
    _fields_ = [('nthread', ctypes.c_int32), ('ftype', ctypes.c_int32), ('rest', ctypes.c_uint8 * 504)]


llama.llama_model_quantize_default_params.restype = Params
llama.llama_model_quantize.restype = ctypes.c_uint32
params = llama.llama_model_quantize_default_params()
params.nthread = 1
params.ftype = int(sys.argv[3])
sys.exit(llama.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(params)))
