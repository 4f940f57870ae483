//! Kernels of every weight type against an f64 dot of the dequantized values, the multi-token
//! and packed paths against single-token calls, and the rg_kernel_dot hook.

mod common;

use common::Rng;
use recyclegpt_wasm::blocks::dequantize_row;
use recyclegpt_wasm::f16::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use recyclegpt_wasm::kernels::{self, scalar, MAX_TOKENS};
use recyclegpt_wasm::packed::{pack_in_place, GroupLayout, PackedMatrix, ROWS};
use recyclegpt_wasm::quant::{q8_k_position, Activation, GgmlType, Needs, PreparedInput};
use recyclegpt_wasm::rg_kernel_dot;
use recyclegpt_wasm::tensor::{input_needs, Tensor};

/// Byte offsets of a block's f16 fields (scales, mins), which random rows keep finite.
fn half_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[0],
    }
}

/// `rows` random rows of `cols` values of `ty`: random bytes, with f16 fields finite and of
/// moderate size (every quant bit pattern occurs), random halves / bfloat16 for the float types.
fn random_rows(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let bytes = rows * ty.row_bytes(cols).unwrap();
    match ty {
        GgmlType::F32 => (0..rows * cols).flat_map(|_| rng.uniform(1.0).to_le_bytes()).collect(),
        GgmlType::F16 => (0..rows * cols).flat_map(|_| f32_to_f16(rng.uniform(1.0)).to_le_bytes()).collect(),
        GgmlType::BF16 => (0..rows * cols).flat_map(|_| f32_to_bf16(rng.uniform(1.0)).to_le_bytes()).collect(),
        _ => {
            let mut data: Vec<u8> = (0..bytes).map(|_| rng.next_u32() as u8).collect();
            for block in data.chunks_exact_mut(ty.block_bytes()) {
                for &at in half_fields(ty) {
                    // Exponent field 5..=12: scales from 2^-10 to 2^-2.
                    let half = (rng.next_u32() as u16 & 0x83ff) | ((5 + rng.next_u32() as u16 % 8) << 10);
                    block[at..at + 2].copy_from_slice(&half.to_le_bytes());
                }
            }
            data
        }
    }
}

fn quantized_types() -> impl Iterator<Item = GgmlType> {
    GgmlType::ALL.into_iter().filter(|t| t.is_quantized())
}

/// One activation row converted as the engine does for `ty`.
fn prepared(ty: GgmlType, x: &[f32]) -> PreparedInput {
    let mut needs = Needs::default();
    needs.add(ty.activation());
    let mut input = PreparedInput::new(x.len(), 1).unwrap();
    input.prepare(x, 1, needs);
    input
}

/// The activation values a dot with `ty` multiplies by, widened to f32.
fn converted(ty: GgmlType, input: &PreparedInput, x: &[f32]) -> Vec<f32> {
    match ty.activation() {
        Activation::F32 => x.to_vec(),
        Activation::F16 => x.iter().map(|&v| f16_to_f32(f32_to_f16(v))).collect(),
        Activation::BF16 => x.iter().map(|&v| bf16_to_f32(f32_to_bf16(v))).collect(),
        Activation::Q8_0 | Activation::Q8_1 => {
            let q8 = input.q8(0);
            q8.qs.iter().enumerate().map(|(i, &q)| q as f32 * q8.scales[i / 32]).collect()
        }
        Activation::Q8_K => {
            let q8 = input.q8_k(0);
            (0..x.len()).map(|e| q8.qs[e - e % 256 + q8_k_position(e % 256)] as f32 * q8.d[e / 256]).collect()
        }
    }
}

#[test]
fn every_type_dots_as_an_f64_dot_of_its_dequantized_values() {
    let mut rng = Rng::new(3);
    for ty in GgmlType::ALL {
        let lengths: &[usize] = match ty.block_size() {
            1 => &[1, 7, 33, 100, 1376],
            32 => &[32, 96, 160, 1376],
            _ => &[256, 512, 1536],
        };
        for &n in lengths {
            let x: Vec<f32> = (0..n).map(|_| rng.uniform(3.0)).collect();
            let input = prepared(ty, &x);
            let row = random_rows(&mut rng, ty, 1, n);
            let mut w = vec![0.0; n];
            dequantize_row(ty, &row, &mut w);
            let xc = converted(ty, &input, &x);
            let want: f64 = w.iter().zip(&xc).map(|(&a, &b)| a as f64 * b as f64).sum();
            let terms: f64 = w.iter().zip(&xc).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
            let got = kernels::dot_row(ty, false, &row, &x).unwrap();
            let err = (got as f64 - want).abs() / terms.max(f64::MIN_POSITIVE);
            assert!(err < 1e-5, "{ty:?} n {n}: got {got}, want {want}, relative error {err:e}");
        }
    }
}

#[test]
fn multi_token_and_packed_kernels_give_each_row_and_token_its_single_row_result() {
    let mut rng = Rng::new(5);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for ty in quantized_types() {
        let (n, rows) = (512, 6); // one packed group of four rows (the 32-block types) and two raw rows
        let xs: Vec<Vec<f32>> = (0..MAX_TOKENS).map(|_| (0..n).map(|_| rng.uniform(3.0)).collect()).collect();
        let inputs: Vec<PreparedInput> = xs.iter().map(|x| prepared(ty, x)).collect();
        let raw = random_rows(&mut rng, ty, rows, n);
        let row_bytes = raw.len() / rows;
        let layout = GroupLayout::new(ty, n / ty.block_size());
        let mut data = raw.clone();
        let packed = pack_in_place(&mut data, layout, &mut vec![0; layout.bytes()]);
        assert!(packed, "{ty:?}");
        let matrix = PackedMatrix::new(&data, rows, layout, packed);
        for count in 1..=MAX_TOKENS {
            for first_row in [0, ROWS] {
                let (mut got, mut want) = (Vec::new(), Vec::new());
                let mut store = |r: usize, sums: &[f32]| {
                    got.extend_from_slice(sums);
                    for x in &xs[..count] {
                        want.push(kernels::dot_row(ty, false, &raw[r * row_bytes..][..row_bytes], x).unwrap());
                    }
                };
                if ty.activation() == Activation::Q8_K {
                    let group: Vec<_> = inputs[..count].iter().map(|i| i.q8_k(0)).collect();
                    kernels::dot_rows_q8_k(ty, matrix, first_row..rows, &group, &mut store);
                } else {
                    let group: Vec<_> = inputs[..count].iter().map(|i| i.q8(0)).collect();
                    kernels::dot_rows_q8(ty, matrix, first_row..rows, &group, &mut store);
                }
                assert_eq!(got.len(), (rows - first_row) * count);
                assert_eq!(bits(&got), bits(&want), "{ty:?}, {count} tokens, from row {first_row}");
            }
        }
    }
}

#[test]
fn matmul_gives_every_row_and_token_its_single_token_result() {
    let mut rng = Rng::new(8);
    let (rows, cols, n) = (70, 512, 5); // two row tiles, a group of 3 tokens and one of 2
    for ty in GgmlType::ALL {
        let mut tensor = Tensor::alloc(ty, rows, cols).unwrap();
        let bytes = random_rows(&mut rng, ty, rows, cols);
        // SAFETY: the tensor holds exactly these bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), tensor.bytes_mut(), bytes.len()) };
        tensor.pack(&mut vec![0; tensor.pack_scratch_bytes()]);
        let x: Vec<f32> = (0..n * cols).map(|_| rng.uniform(2.0)).collect();
        let mut input = PreparedInput::new(cols, n).unwrap();
        input.prepare(&x, n, input_needs(&[&tensor]));
        let mut batched = vec![0.0; n * rows];
        tensor.matmul(&x, &input, n, &mut batched);
        for t in 0..n {
            let token = &x[t * cols..][..cols];
            let mut single_input = PreparedInput::new(cols, 1).unwrap();
            single_input.prepare(token, 1, input_needs(&[&tensor]));
            let mut single = vec![0.0; rows];
            tensor.matmul(token, &single_input, 1, &mut single);
            for r in 0..rows {
                assert_eq!(batched[t * rows + r].to_bits(), single[r].to_bits(), "{ty:?} row {r} token {t}");
                let raw_row = &bytes[r * bytes.len() / rows..][..bytes.len() / rows];
                assert_eq!(single[r].to_bits(), kernels::dot_row(ty, false, raw_row, token).unwrap().to_bits());
            }
        }
    }
}

#[test]
fn bf16_dot_sums_in_the_simd_order() {
    // Eight lane sums, then ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7)), then the tail in order.
    // Added one by one, each 2^-24 would be lost against 1 (a tie, to even); in lanes they add
    // up first: v0 = 1 (lost once), v1 = v2 = v3 = 2^-23, so 1 + 3·2^-23, and the tail's 2^-22.
    let w = [f32_to_bf16(1.0); 11];
    let mut x = [2f32.powi(-24); 11];
    x[0] = 1.0;
    x[8] = 2f32.powi(-22);
    x[9] = 0.0;
    x[10] = 0.0;
    assert_eq!(scalar::dot_bf16(&w, &x), 1.0 + 5.0 * 2f32.powi(-23));
}

#[test]
fn kernel_dot_hook_converts_the_activation_and_validates() {
    let mut rng = Rng::new(4);
    let x: Vec<f32> = (0..512).map(|_| rng.uniform(1.0)).collect();
    for ty in GgmlType::ALL {
        let row = random_rows(&mut rng, ty, 1, 512);
        // SAFETY: row holds one row of 512 values of ty, x holds 512 f32.
        let got = unsafe { rg_kernel_dot(ty.id(), 1, row.as_ptr(), x.as_ptr(), 512) };
        assert_eq!(recyclegpt_wasm::rg_last_error(), 0);
        assert_eq!(got.to_bits(), kernels::dot_row(ty, false, &row, &x).unwrap().to_bits(), "{ty:?}");
        assert!(got.is_finite());
    }
    // SAFETY: the pointers are valid for the lengths the engine would read, or refused first.
    unsafe {
        assert!(rg_kernel_dot(8, 0, [0u8; 34].as_ptr(), x.as_ptr(), 33).is_nan()); // partial block
        assert_eq!(recyclegpt_wasm::rg_last_error(), recyclegpt_wasm::error::ERR_BAD_ARGUMENT);
        assert!(rg_kernel_dot(12, 0, [0u8; 144].as_ptr(), x.as_ptr(), 32).is_nan()); // Q4_K needs 256
        assert_eq!(recyclegpt_wasm::rg_last_error(), recyclegpt_wasm::error::ERR_BAD_ARGUMENT);
        for unknown in [9, 15, 16, 20, 23, 34, 39] {
            // Q8_1, Q8_K (activation-only), IQ2_XXS, IQ4_NL, IQ4_XS, TQ1_0, MXFP4.
            assert!(rg_kernel_dot(unknown, 0, [0u8; 512].as_ptr(), x.as_ptr(), 256).is_nan());
            assert_eq!(recyclegpt_wasm::rg_last_error(), recyclegpt_wasm::error::ERR_UNSUPPORTED_TYPE);
        }
        assert!(rg_kernel_dot(0, 0, std::ptr::null(), x.as_ptr(), 4).is_nan());
        assert_eq!(recyclegpt_wasm::rg_last_error(), recyclegpt_wasm::error::ERR_BAD_ARGUMENT);
    }
}
