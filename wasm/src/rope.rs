//! Rotary position embedding as llama.cpp's CPU backend computes it (ggml-cpu `rope_f32`: the per-position
//! cos/sin cache with YaRN and frequency factors; llama-context's attention factor): one `Rope` per set of
//! frequencies a model uses (windowed layers have their own base).

use crate::config::{Config, RopeScaling};

/// llama.cpp's YaRN ramp bounds (its defaults; llama, qwen2/3 and gemma3 read no other).
const YARN_BETA_FAST: f32 = 32.0;
const YARN_BETA_SLOW: f32 = 1.0;

#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// Pairs are (i, i + rope_dim/2) (NEOX) rather than (2i, 2i + 1).
    neox: bool,
    rope_dim: usize,
    /// θ_i = pos · theta_scale^i.
    theta_scale: f32,
    freq_scale: f32,
    ext_factor: f32,
    /// Multiplies every cos and sin.
    mscale: f32,
    corr_dims: [f32; 2],
}

impl Rope {
    /// The RoPE of the global layers and, with a sliding window, of the windowed ones.
    pub fn for_config(cfg: &Config) -> (Rope, Option<Rope>) {
        let neox = cfg.arch.has(crate::config::ArchFlags::ROPE_NEOX);
        let freq_scale = match cfg.rope_scaling {
            RopeScaling::None => 1.0,
            RopeScaling::Linear | RopeScaling::Yarn => 1.0 / cfg.rope_scaling_factor,
        };
        let ext_factor = if cfg.rope_scaling == RopeScaling::Yarn { 1.0 } else { 0.0 };
        // llama_context: YaRN's magnitude scaling, cancelled by the one rope_yarn applies again.
        let mut attn_factor = 1.0f32;
        if ext_factor != 0.0 {
            let factor = 1.0 / freq_scale;
            attn_factor = if factor <= 1.0 { 1.0 } else { 0.1 * 1.0 * factor.ln() + 1.0 };
            attn_factor *= 1.0 / (1.0 + 0.1 * factor.ln());
        }
        attn_factor *= cfg.rope_attn_factor;
        let rope = |base: f32, freq_scale: f32| Rope {
            neox,
            rope_dim: cfg.rope_dim,
            theta_scale: base.powf(-2.0 / cfg.rope_dim as f32),
            freq_scale,
            ext_factor,
            mscale: attn_factor,
            corr_dims: corr_dims(cfg.rope_dim, cfg.yarn_orig_ctx, base),
        };
        (rope(cfg.rope_freq_base, freq_scale), cfg.sliding_window.map(|s| rope(s.rope_freq_base, 1.0)))
    }

    /// cos/sin pairs for one position (`rope_dim` values); `factors` divide each pair's angle
    /// (Llama 3's `rope_freqs.weight`). θ advances by repeated multiplication in f32 as ggml's cache does.
    pub fn table(&self, pos: usize, factors: Option<&[f32]>, table: &mut [f32]) {
        let mut theta = pos as f32;
        for (i, pair) in table.chunks_exact_mut(2).enumerate() {
            let extrapolated = factors.map_or(theta, |f| theta / f[i]);
            let (cos, sin) = self.yarn(extrapolated, 2 * i);
            pair[0] = cos;
            pair[1] = sin;
            theta *= self.theta_scale;
        }
    }

    /// ggml's rope_yarn: interpolated angle, blended towards the extrapolated one below the ramp.
    fn yarn(&self, theta_extrap: f32, i0: usize) -> (f32, f32) {
        let theta_interp = self.freq_scale * theta_extrap;
        let mut theta = theta_interp;
        let mut mscale = self.mscale;
        if self.ext_factor != 0.0 {
            let ramp_mix = ramp(self.corr_dims, i0) * self.ext_factor;
            theta = theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
            mscale *= 1.0 + 0.1 * (1.0 / self.freq_scale).ln();
        }
        (theta.cos() * mscale, theta.sin() * mscale)
    }

    /// Rotates the first rope_dim values of each head of `row` by `table`; the rest stay as they are.
    pub fn apply(&self, row: &mut [f32], head_dim: usize, table: &[f32]) {
        let half = self.rope_dim / 2;
        for head in row.chunks_exact_mut(head_dim) {
            for (i, cs) in table.chunks_exact(2).enumerate() {
                let (a, b) = if self.neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cs[0] - x1 * cs[1];
                head[b] = x0 * cs[1] + x1 * cs[0];
            }
        }
    }
}

/// ggml_rope_yarn_corr_dims: the pair indices between which YaRN ramps from extrapolation to interpolation.
fn corr_dims(n_dims: usize, n_ctx_orig: usize, base: f32) -> [f32; 2] {
    let dim = |n_rot: f32| {
        n_dims as f32 * (n_ctx_orig as f32 / (n_rot * 2.0 * std::f32::consts::PI)).ln() / (2.0 * base.ln())
    };
    let (start, end) = (dim(YARN_BETA_FAST).floor(), dim(YARN_BETA_SLOW).ceil());
    [start.max(0.0), end.min(n_dims as f32 - 1.0)]
}

fn ramp(corr_dims: [f32; 2], i0: usize) -> f32 {
    let y = ((i0 / 2) as f32 - corr_dims[0]) / (corr_dims[1] - corr_dims[0]).max(0.001);
    1.0 - y.max(0.0).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rope(neox: bool) -> Rope {
        Rope { neox, rope_dim: 4, theta_scale: 0.01, freq_scale: 1.0, ext_factor: 0.0, mscale: 1.0, corr_dims: [0.0, 3.0] }
    }

    #[test]
    fn normal_rotates_adjacent_pairs_and_neox_the_halves() {
        let mut table = [0.0; 4];
        rope(false).table(1, None, &mut table);
        assert_eq!(table, [1f32.cos(), 1f32.sin(), 0.01f32.cos(), 0.01f32.sin()]);
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let (mut normal, mut neox) = (x, x);
        rope(false).apply(&mut normal[..4], 4, &table);
        rope(true).apply(&mut neox[..4], 4, &table);
        let rot = |a: f32, b: f32, c: f32, s: f32| (a * c - b * s, a * s + b * c);
        assert_eq!((normal[0], normal[1]), rot(1.0, 2.0, table[0], table[1]));
        assert_eq!((normal[2], normal[3]), rot(3.0, 4.0, table[2], table[3]));
        assert_eq!((neox[0], neox[2]), rot(1.0, 3.0, table[0], table[1]));
        assert_eq!((neox[1], neox[3]), rot(2.0, 4.0, table[2], table[3]));
    }

    #[test]
    fn factors_divide_the_angle_and_linear_scaling_multiplies_it() {
        let mut plain = [0.0; 4];
        let mut factored = [0.0; 4];
        rope(false).table(3, None, &mut plain);
        rope(false).table(3, Some(&[2.0, 1.0]), &mut factored);
        assert_eq!(factored[0], 1.5f32.cos());
        assert_eq!(factored[2..], plain[2..]);
        let mut scaled = [0.0; 4];
        Rope { freq_scale: 0.5, ..rope(false) }.table(3, None, &mut scaled);
        assert_eq!(scaled[0], factored[0]);
    }

    #[test]
    fn yarn_ramps_between_interpolation_and_extrapolation() {
        // With freq_scale 0.25 the lowest pair (fast, i0 = 0, below the ramp) keeps its extrapolated angle,
        // the highest (i0 = 2 · 3, past the ramp end) takes the interpolated one; both scaled by mscale.
        let yarn = Rope { ext_factor: 1.0, freq_scale: 0.25, ..rope(false) };
        let m = 1.0 + 0.1 * 4f32.ln();
        let (c0, _) = yarn.yarn(8.0, 0);
        let (c3, _) = yarn.yarn(8.0, 6);
        assert_eq!(c0, 8f32.cos() * m);
        assert_eq!(c3, 2f32.cos() * m);
        // 64·ln(4096 / (β·2π)) / (2·ln 10000) is 10.47 for β = 32 (floored) and 22.51 for β = 1 (ceiled).
        assert_eq!(corr_dims(64, 4096, 10000.0), [10.0, 23.0]);
    }
}
