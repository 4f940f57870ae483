/** Registers the WebGPU backend (and so the kernels package) for entries whose runtime can have WebGPU. */
import { runtime } from './runtime.js';

runtime.webgpu = () => import('./backend-webgpu.js');
