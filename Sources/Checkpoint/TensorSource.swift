/// What hands out a model's tensors by name and expected shape: a model folder, or a generator writing a checkpoint
/// of a given geometry (the bench records the VQ-VAE's tensors by building it from one).
public protocol TensorSource {
    var configuration: OrthusConfiguration { get }
    /// Tensor `name`, which must have exactly `shape`, widened to float32.
    func load(_ name: String, shape: [Int]) throws -> LoadedTensor
}

extension ModelDirectory: TensorSource {}
