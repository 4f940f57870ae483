//! Scalar kernels against a naive f64 dequantize-then-dot, and the rg_kernel_dot hook.

mod common;

use common::*;
use recyclegpt_wasm::f16::{f16_to_f32, f32_to_f16};
use recyclegpt_wasm::kernels::{self, scalar};
use recyclegpt_wasm::packed::{pack_in_place, GroupLayout, PackedMatrix, ROWS};
use recyclegpt_wasm::quant::GgmlType;
use recyclegpt_wasm::quant::{PreparedInput, Q8Activation};
use recyclegpt_wasm::rg_kernel_dot;

/// |got - want| against the scale of the terms, Σ|w·x|.
fn assert_close(got: f32, want: f64, terms: f64, what: &str) {
    let err = (got as f64 - want).abs() / terms.max(f64::MIN_POSITIVE);
    assert!(err < 1e-6, "{what}: got {got}, want {want}, relative error {err:e}");
}

fn dot64(w: &[f32], x: &[f32]) -> (f64, f64) {
    let pairs = w.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64);
    (pairs.clone().sum(), pairs.map(f64::abs).sum())
}

/// One activation row quantized as the engine does.
fn prepared(x: &[f32]) -> PreparedInput {
    let mut input = PreparedInput::new(x.len(), 1).unwrap();
    input.prepare(x, 1, false, true);
    input
}

#[test]
fn scalar_dots_match_f64_reference() {
    let mut rng = Rng::new(3);
    for n in [32u32, 64, 96, 160, 512, 1376] {
        let x: Vec<f32> = (0..n).map(|_| rng.uniform(3.0)).collect();
        let input = prepared(&x);
        let (scales, qs) = (input.q8(0).scales, input.q8(0).qs);
        let x_q8: Vec<f32> = qs.iter().enumerate().map(|(i, &q)| q as f32 * scales[i / 32]).collect();
        let x_f16: Vec<f32> = x.iter().map(|&v| f16_to_f32(f32_to_f16(v))).collect();

        let (_, w) = random_tensor(&mut rng, F32, 1, n, 1.0);
        let (want, terms) = dot64(&w, &x);
        assert_close(scalar::dot_f32(&w, &x), want, terms, "f32");

        let (bytes, w) = random_tensor(&mut rng, F16, 1, n, 1.0);
        let halves: Vec<u16> = bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
        let (want, terms) = dot64(&w, &x_f16);
        assert_close(scalar::dot_f16(&halves, &x_f16), want, terms, "f16");

        let (bytes, w) = random_tensor(&mut rng, Q8_0, 1, n, 1.0);
        let (want, terms) = dot64(&w, &x_q8);
        assert_close(scalar::dot_q8_0_q8_0(&bytes, input.q8(0)), want, terms, "q8_0");

        let (bytes, w) = random_tensor(&mut rng, Q4_0, 1, n, 1.0);
        let (want, terms) = dot64(&w, &x_q8);
        assert_close(scalar::dot_q4_0_q8_0(&bytes, input.q8(0)), want, terms, "q4_0");
    }
}

#[test]
fn packed_multi_token_kernels_give_each_row_and_token_its_single_row_result() {
    let mut rng = Rng::new(5);
    let (n, rows) = (160, 6); // five blocks; one packed group of four rows and two raw rows
    let inputs: Vec<PreparedInput> =
        (0..4).map(|_| prepared(&(0..n).map(|_| rng.uniform(3.0)).collect::<Vec<_>>())).collect();
    let xs: Vec<Q8Activation> = inputs.iter().map(|input| input.q8(0)).collect();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for ty in [Q8_0, Q4_0] {
        let (raw, _) = random_tensor(&mut rng, ty, rows, n, 1.0);
        let row_bytes = raw.len() / rows as usize;
        let one = |r: usize, x| {
            let row = &raw[r * row_bytes..][..row_bytes];
            if ty == Q8_0 {
                kernels::dot_q8_0_q8_0(row, x)
            } else {
                kernels::dot_q4_0_q8_0(row, x)
            }
        };
        let ggml_type = GgmlType::from_id(ty).unwrap();
        let layout = GroupLayout::new(ggml_type, n as usize / 32);
        let mut data = raw.clone();
        assert!(pack_in_place(&mut data, layout, &mut vec![0; layout.bytes()]));
        let matrix = PackedMatrix { data: &data, rows: rows as usize, packed_rows: ROWS, layout };
        for count in 1..=kernels::MAX_TOKENS {
            for first_row in [0, ROWS] {
                let (mut got, mut want) = (Vec::new(), Vec::new());
                kernels::dot_rows_quantized(ty == Q8_0, matrix, first_row..rows as usize, &xs[..count], |r, sums| {
                    got.extend(sums);
                    want.extend(xs[..count].iter().map(|&x| one(r, x)));
                });
                assert_eq!(got.len(), (rows as usize - first_row) * count);
                assert_eq!(bits(&got), bits(&want), "type {ty}, {count} tokens, from row {first_row}");
            }
        }
    }
}

#[test]
fn kernel_dot_hook_converts_the_activation_and_validates() {
    let mut rng = Rng::new(4);
    let x: Vec<f32> = (0..64).map(|_| rng.uniform(1.0)).collect();
    for ty in [F32, F16, Q8_0, Q4_0] {
        let (bytes, w) = random_tensor(&mut rng, ty, 1, 64, 1.0);
        // SAFETY: bytes holds one row of 64 values of ty, x holds 64 f32.
        let got = unsafe { rg_kernel_dot(ty, 1, bytes.as_ptr(), x.as_ptr(), 64) };
        let (want, terms) = dot64(&w, &x);
        // Quantizing the activation to 8 bits (or f16) costs up to ~1% of the terms.
        let tolerance = if ty == F32 { 1e-6 } else { 1e-2 };
        assert!((got as f64 - want).abs() < tolerance * terms, "type {ty}: {got} vs {want}");
        assert_eq!(recyclegpt_wasm::rg_last_error(), 0);
    }
    // SAFETY: the pointers are valid for the lengths the engine would read, or refused first.
    unsafe {
        assert!(rg_kernel_dot(Q8_0, 0, [0u8; 34].as_ptr(), x.as_ptr(), 33).is_nan()); // partial block
        assert_eq!(recyclegpt_wasm::rg_last_error(), recyclegpt_wasm::error::ERR_BAD_ARGUMENT);
        assert!(rg_kernel_dot(3, 0, [0u8; 34].as_ptr(), x.as_ptr(), 32).is_nan()); // Q4_1
        assert_eq!(recyclegpt_wasm::rg_last_error(), recyclegpt_wasm::error::ERR_UNSUPPORTED_TYPE);
        assert!(rg_kernel_dot(F32, 0, std::ptr::null(), x.as_ptr(), 4).is_nan());
        assert_eq!(recyclegpt_wasm::rg_last_error(), recyclegpt_wasm::error::ERR_BAD_ARGUMENT);
    }
}
