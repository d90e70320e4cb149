extension Duration {
    /// The duration in seconds, as a Double (for rates and reports).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }

    /// Whole microseconds (heartbeats report compute time in them).
    public var microseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
}
