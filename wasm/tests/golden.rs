//! The engine against ggml itself (test/fixtures/ggml-dot-golden.txt, written by
//! ggml-dot-golden.py from the libraries node-llama-cpp ships): activation conversions and
//! dequantized rows bit for bit, quantized dots bit for bit against ggml's generic kernels.

use std::collections::HashMap;

use recyclegpt_wasm::blocks::dequantize_row;
use recyclegpt_wasm::f16::f32_to_f16;
use recyclegpt_wasm::kernels;
use recyclegpt_wasm::quant::{q8_k_position, GgmlType, Needs, PreparedInput};
use recyclegpt_wasm::tensor::Tensor;

struct Golden {
    xs: Vec<Vec<f32>>,
    /// (kind, activation row) → ggml's bytes.
    activations: HashMap<(String, usize), Vec<u8>>,
    /// (type, weight row) → its bytes and ggml's dequantized FNV-1a hash.
    weights: HashMap<(String, usize), (Vec<u8>, String)>,
    /// (type, weight row, activation row) → ggml's dot.
    dots: Vec<(String, usize, usize, f32)>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn golden() -> Golden {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../test/fixtures/ggml-dot-golden.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut g = Golden { xs: Vec::new(), activations: HashMap::new(), weights: HashMap::new(), dots: Vec::new() };
    let mut hashes = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let index = |i: usize| f[i].parse::<usize>().unwrap();
        match f[0] {
            "x" => g.xs.push(hex(f[2]).chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
            "act" => drop(g.activations.insert((f[1].into(), index(2)), hex(f[3]))),
            "w" => drop(g.weights.insert((f[1].into(), index(2)), (hex(f[3]), String::new()))),
            "deq" => drop(hashes.insert((f[1].to_string(), index(2)), f[3].to_string())),
            "dot" => {
                let bits = u32::from_le_bytes(hex(f[4]).try_into().unwrap());
                g.dots.push((f[1].into(), index(2), index(3), f32::from_bits(bits)));
            }
            other => panic!("unknown golden line {other}"),
        }
    }
    for (key, hash) in hashes {
        g.weights.get_mut(&key).unwrap().1 = hash;
    }
    g
}

fn ty(name: &str) -> GgmlType {
    *GgmlType::ALL.iter().find(|t| t.name() == name).unwrap()
}

fn fnv1a(values: &[f32]) -> String {
    let hash = values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{hash:016x}")
}

#[test]
fn activation_conversions_are_ggmls_bit_for_bit() {
    let g = golden();
    let needs = Needs { f16: true, bf16: true, q8: true, q8_k: true };
    for (i, x) in g.xs.iter().enumerate() {
        let mut input = PreparedInput::new(x.len(), 1).unwrap();
        input.prepare(x, 1, needs);
        let half = |v: f32| f32_to_f16(v).to_le_bytes();
        let (q8, q8_k) = (input.q8(0), input.q8_k(0));
        // ggml's block layouts, rebuilt from the engine's widened form.
        let mut ours: HashMap<&str, Vec<u8>> = HashMap::new();
        for (b, qs) in q8.qs.chunks_exact(32).enumerate() {
            let quants = qs.iter().map(|&q| q as i8 as u8);
            ours.entry("Q8_0").or_default().extend(half(q8.scales[b]).into_iter().chain(quants.clone()));
            let head = half(q8.scales[b]).into_iter().chain(half(q8.q8_1_s[b]));
            ours.entry("Q8_1").or_default().extend(head.chain(quants));
        }
        for (b, qs) in q8_k.qs.chunks_exact(256).enumerate() {
            let bytes = ours.entry("Q8_K").or_default();
            bytes.extend(q8_k.d[b].to_le_bytes());
            bytes.extend((0..256).map(|e| qs[q8_k_position(e)] as i8 as u8));
            bytes.extend(q8_k.bsums[b * 16..][..16].iter().flat_map(|s| s.to_le_bytes()));
        }
        let high_halves = |v: &[f32]| v.iter().flat_map(|f| ((f.to_bits() >> 16) as u16).to_le_bytes()).collect();
        ours.insert("BF16", high_halves(input.bf16_rounded(0)));
        ours.insert("F16", input.f16_rounded(0).iter().flat_map(|&f| half(f)).collect());
        for (kind, bytes) in ours {
            assert!(bytes == g.activations[&(kind.to_string(), i)], "{kind} conversion of activation row {i}");
        }
    }
}

#[test]
fn dequantized_rows_are_ggmls_bit_for_bit() {
    let g = golden();
    assert_eq!(g.weights.len(), 2 * 12);
    for ((name, r), (bytes, want)) in &g.weights {
        let ty = ty(name);
        let cols = bytes.len() / ty.block_bytes() * ty.block_size();
        let mut values = vec![0.0; cols];
        dequantize_row(ty, bytes, &mut values);
        assert_eq!(&fnv1a(&values), want, "{name} row {r}");
        // Through a tensor of 5 copies, packed where the type packs (4 rows) and raw (1 row).
        let mut tensor = Tensor::alloc(ty, 5, cols).unwrap();
        for copy in 0..5 {
            // SAFETY: the tensor holds 5 rows of bytes.len() bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), tensor.bytes_mut().add(copy * bytes.len()), bytes.len())
            };
        }
        tensor.pack(&mut vec![0; tensor.pack_scratch_bytes()]);
        for copy in 0..5 {
            values.iter_mut().for_each(|v| *v = f32::NAN);
            tensor.dequantize_row(copy, &mut values);
            assert_eq!(&fnv1a(&values), want, "{name} row {r} as tensor row {copy}");
        }
    }
}

#[test]
fn quantized_dots_are_ggmls_generic_kernels_bit_for_bit() {
    let g = golden();
    assert_eq!(g.dots.len(), 10 * 2 * 3);
    for (name, r, i, want) in &g.dots {
        let got = kernels::dot_row(ty(name), false, &g.weights[&(name.clone(), *r)].0, &g.xs[*i]).unwrap();
        assert_eq!(got.to_bits(), want.to_bits(), "{name} row {r} · x{i}: {got} vs ggml's {want}");
    }
}
