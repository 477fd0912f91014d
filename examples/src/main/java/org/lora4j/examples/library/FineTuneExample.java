package org.lora4j.examples.library;

import org.lora4j.core.LoraConfig;
import org.lora4j.train.data.Dataset;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.model.PeftModel;
import org.lora4j.train.text.Message;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.SamplingCallback;
import org.lora4j.train.trainer.TrainConfig;
import org.lora4j.train.trainer.Trainer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A first LoRA fine-tune with lora4j as a library: load a Hugging Face model directory, train an
 * adapter on a chat JSONL file, save it in PEFT's format, load it back and generate. The walk-through
 * is docs/library.md.
 *
 * <pre>
 *   java -cp ... org.lora4j.examples.library.FineTuneExample MODEL_DIR DATA.jsonl OUT_DIR [MAX_STEPS]
 * </pre>
 */
public final class FineTuneExample {
    private FineTuneExample() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 3 || args.length > 4) {
            System.err.println("usage: FineTuneExample MODEL_DIR DATA.jsonl OUT_DIR [MAX_STEPS]");
            System.exit(2);
        }
        Path modelDir = Path.of(args[0]);
        Path dataFile = Path.of(args[1]);
        Path out = Path.of(args[2]);
        int maxSteps = args.length == 4 ? Integer.parseInt(args[3]) : 60;
        int every = Math.max(1, maxSteps / 3);   // evaluate and sample three times in the run

        // 1. The base model and its tokenizer, both from one Hugging Face model directory
        //    (config.json, model.safetensors, tokenizer.json), as from_pretrained reads them.
        Tokenizer tokenizer = Tokenizers.load(modelDir);
        DecoderModel model = DecoderModel.load(modelDir);

        // 2. The run, configured by name. The LoRA config lives here and only here: the trainer
        //    attaches it to the model, and run.json records it with everything else that decides the run.
        //    r 8, alpha 16 on every linear layer of the blocks (attention and MLP): the common recipe.
        LoraConfig lora = LoraConfig.of(8, 16, "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
                .withDropout(0.05);
        TrainConfig config = TrainConfig.builder()
                .lora(lora)
                .lr(2e-3)
                .maxSteps(maxSteps)
                .warmupSteps(maxSteps / 10)
                .batchSize(4)
                .maxLength(128)           // the trainer cuts longer examples (overflow: truncate)
                .evalFraction(0.2)        // held out from the one data file, by the seed
                .evalEvery(every)
                .checkpointEvery(0)       // a checkpoint at the end only
                .seed(42)
                .build();

        // 3. The data as it is in the file (messages, text, prompt/completion, Alpaca or ShareGPT lines),
        //    at full length: the length limit is the training config's business, applied by the trainer.
        Dataset data = Dataset.load(dataFile, tokenizer);

        // 4. The trainer takes the tokenizer (for padding, and for the files of a full fine-tune)
        //    and writes everything into out: run.json, metrics.jsonl, the final adapter.
        Trainer trainer = new Trainer(model, tokenizer, config, data, out);
        // What the model says to a fixed prompt as training goes, in out/samples.jsonl: a run that
        // learns the wrong thing shows it here long before the loss does.
        trainer.addCallback(SamplingCallback.builder(tokenizer)
                .prompt("What colour is the sky?")
                .every(every)
                .maxNewTokens(24)
                .temperature(0)           // greedy: the samples change only when the model does
                .build());
        // A callback of one's own sees the step's metrics and the model (TrainerState).
        trainer.addCallback(state -> {
            if (state.evalLoss() != null) {
                System.out.printf("step %d: train loss %.4f, eval loss %.4f%n",
                        state.globalStep(), state.loss(), state.evalLoss());
            }
        });
        Trainer.Result result = trainer.run();
        System.out.printf("trained %d steps, final loss %.4f%n", result.steps(), result.lastLoss());

        // 5. The adapter in PEFT's layout (adapter_config.json + adapter_model.safetensors), naming
        //    its base model (config.json's _name_or_path, else the model directory): this directory is
        //    what PeftModel.from_pretrained loads in Python, or loadAdapter below.
        Path adapterDir = out.resolve("adapter");
        new PeftModel(model).savePretrained(adapterDir);

        // 6. Later, elsewhere: a fresh base model, the adapter loaded onto it, and a reply.
        DecoderModel base = DecoderModel.load(modelDir);
        new PeftModel(base).loadAdapter(adapterDir, PeftModel.DEFAULT_ADAPTER);
        int[] prompt = tokenizer.encodeChatPrompt(List.of(Message.user("What colour is the sky?")));
        int[] reply = base.generate(prompt, 24, tokenizer.endTokenIds(), DecoderModel.greedy(), true);
        System.out.println("reply: " + tokenizer.decode(reply));
    }
}
