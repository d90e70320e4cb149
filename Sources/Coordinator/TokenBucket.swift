import Runtime

/// A rate limit: `burst` tokens at most, refilled at `rate` a second; each admitted event takes one.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private var refilled: ContinuousClock.Instant

    init(rate: Double, burst: Double, at now: ContinuousClock.Instant) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        refilled = now
    }

    /// Refills for the time since the last call.
    mutating func refill(at now: ContinuousClock.Instant) {
        if now > refilled { tokens = min(burst, tokens + (now - refilled).seconds * rate) }
        refilled = now
    }

    /// Takes a token if there is one.
    mutating func take(at now: ContinuousClock.Instant) -> Bool {
        refill(at: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whether the bucket would be full at `now` (its owner has been idle long enough to be forgotten).
    func isFull(at now: ContinuousClock.Instant) -> Bool {
        tokens + (now - refilled).seconds * rate >= burst
    }
}
