import Foundation
import Generation
import Testing
import Wire

@testable import Gateway

/// OpenAI request bodies to cluster jobs: the same request `orthus submit` would send for the same options, and a
/// refusal naming the field for what the cluster cannot do.
@Suite struct RequestMappingTests {
    let model = ServedModel(id: "orthus-test", imageSide: 64, patches: 16)
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]

    func chat(_ json: String) throws -> ChatRequest {
        try JSONDecoder().decode(ChatRequest.self, from: Data(json.utf8))
    }

    @Test func aChatAboutAPictureIsAnImageQuestion() throws {
        let url = "data:image/png;base64," + Data(Self.png).base64EncodedString()
        let request = try chat(
            """
            {"model": "orthus-test", "max_completion_tokens": 12, "temperature": 0.5, "seed": 9, "messages": [
              {"role": "system", "content": "Be brief."},
              {"role": "user", "content": [{"type": "text", "text": "What is here?"},
                                           {"type": "image_url", "image_url": {"url": "\(url)"}}]}]}
            """
        )
        let (spec, picture) = try RequestMapping.job(for: request, model: model)
        #expect(picture == Self.png)
        let expected = GenerationRequest(
            mode: .imageToText,
            prompt: "Be brief.\nWhat is here?",
            maxTokens: 12,
            sampling: SamplingParameters(temperature: 0.5),
            seed: 9
        )
        #expect(spec.request == expected)
    }

    @Test func modalitiesWithImageAskForAnInterleavedAnswerWithItsDefaults() throws {
        let request = try chat(
            #"{"model": "orthus-test", "modalities": ["text", "image"], "steps": 10, "messages": [{"role": "user", "content": "Draw"}]}"#
        )
        let spec = try RequestMapping.job(for: request, model: model).spec
        #expect(
            spec.request
                == GenerationRequest(
                    mode: .interleaved,
                    prompt: "Draw",
                    sampling: .init(temperature: 1, topK: 50),
                    steps: 10
                )
        )
    }

    @Test func whatTheClusterCannotDoIsRefusedNamingTheField() throws {
        func refusal(_ json: String) throws -> APIError? {
            let request = try chat(json)
            do {
                _ = try RequestMapping.job(for: request, model: model)
                return nil
            } catch {
                return error
            }
        }
        let user = #"[{"role": "user", "content": "hi"}]"#
        #expect(try refusal(#"{"model": "gpt-4o", "messages": \#(user)}"#)?.status == 404)
        #expect(try refusal(#"{"model": "orthus-test", "n": 2, "messages": \#(user)}"#)?.param == "n")
        #expect(try refusal(#"{"model": "orthus-test", "messages": []}"#)?.param == "messages")
        #expect(
            try refusal(#"{"model": "orthus-test", "temperature": -1, "messages": \#(user)}"#)?.param == "temperature"
        )
        #expect(try refusal(#"{"model": "orthus-test", "top_p": 0, "messages": \#(user)}"#)?.param == "top_p")
        #expect(try refusal(#"{"model": "orthus-test", "max_tokens": 0, "messages": \#(user)}"#)?.param == "max_tokens")
        let remote =
            #"[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]"#
        #expect(try refusal(#"{"model": "orthus-test", "messages": \#(remote)}"#)?.code == "invalid_image_url")
        let notPNG =
            #"[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]"#
        #expect(try refusal(#"{"model": "orthus-test", "messages": \#(notPNG)}"#)?.code == "invalid_image_url")
        let audio = #"[{"role": "user", "content": [{"type": "input_audio"}]}]"#
        #expect(try refusal(#"{"model": "orthus-test", "messages": \#(audio)}"#)?.param == "messages[0]")
    }

    @Test func anImageGenerationIsNJobsWithConsecutiveSeeds() throws {
        let request = try JSONDecoder().decode(
            ImageRequest.self,
            from: Data(
                #"{"prompt": "a cat", "n": 3, "size": "64x64", "seed": 5, "steps": 20, "guidance_scale": 2}"#.utf8
            )
        )
        let specs = try RequestMapping.jobs(for: request, model: model)
        #expect(
            specs.map(\.seed) == [5, 6, 7]
                && specs.allSatisfy { $0.mode == .textToImage && $0.steps == 20 && $0.guidance == 2 }
        )
        var wrong = request
        wrong.size = "1024x1024"
        #expect(throws: APIError.self) { try RequestMapping.jobs(for: wrong, model: model) }
        wrong = request
        wrong.n = 11
        #expect(throws: APIError.self) { try RequestMapping.jobs(for: wrong, model: model) }
    }

    @Test func aStreamedGenerationIsOneImageWithFewerPartialImagesThanPatches() throws {
        func param(_ json: String) throws -> String? {
            do {
                _ = try RequestMapping.jobs(
                    for: try JSONDecoder().decode(ImageRequest.self, from: Data(json.utf8)),
                    model: model
                )
                return nil
            } catch let error as APIError {
                return error.param ?? "(no param)"
            }
        }
        #expect(try param(#"{"prompt": "a cat", "stream": true, "partial_images": 15}"#) == nil)
        #expect(try param(#"{"prompt": "a cat", "stream": true, "partial_images": 16}"#) == "partial_images")
        #expect(try param(#"{"prompt": "a cat", "stream": true, "partial_images": -1}"#) == "partial_images")
        #expect(try param(#"{"prompt": "a cat", "partial_images": 2}"#) == "partial_images")
        #expect(try param(#"{"prompt": "a cat", "stream": true, "n": 2}"#) == "n")
    }
}
