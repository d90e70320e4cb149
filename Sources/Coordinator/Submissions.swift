/// Which job each client submission became, so a submit sent again is not a second job.
///
/// A client names each submission with a random id and sends it again while no acceptance has come (its
/// coordinator may have died with the first copy, or the acceptance may be slow). Entries are per key (another key's
/// ids are another namespace) and kept for the newest `capacity` submissions: a client sends again only within its
/// accept timeout, so an old entry is never needed, and the table cannot grow with the jobs submitted.
struct Submissions {
    private var jobs: [Key: UInt64] = [:]
    private var order: [Key] = []
    private var start = 0
    let capacity: Int

    private struct Key: Hashable {
        var owner: String
        var submission: UInt64
    }

    init(capacity: Int = 4096) { self.capacity = capacity }

    /// The job an earlier copy of this submission became; nil for a new one (or one without an id).
    func job(owner: String, submission: UInt64) -> UInt64? {
        submission == 0 ? nil : jobs[Key(owner: owner, submission: submission)]
    }

    mutating func record(owner: String, submission: UInt64, job: UInt64) {
        guard submission != 0 else { return }
        let key = Key(owner: owner, submission: submission)
        guard jobs.updateValue(job, forKey: key) == nil else { return }
        order.append(key)
        if order.count - start > capacity {
            jobs[order[start]] = nil
            start += 1
            // Compacted now and then, so the order list stays about `capacity` long.
            if start >= capacity {
                order.removeFirst(start)
                start = 0
            }
        }
    }

    var count: Int { jobs.count }
}
