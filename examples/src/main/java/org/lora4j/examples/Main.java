package org.lora4j.examples;

import java.util.Arrays;
import java.util.Set;

/**
 * The {@code lora4j} command line: {@code java -jar examples/target/lora4j.jar [command] [options]}.
 * With no command it runs the quickstart on built-in defaults.
 */
public final class Main {
    private Main() {
    }

    static final String USAGE = """
            usage: lora4j [command] [options]     (each command takes --help)
              quickstart   fit a LoRA adapter to a known low-rank change and save it in PEFT format (default)
              pretrain     train a small model from scratch (built-in corpus by default), Hugging Face layout
              sft          fine-tune a model on a JSONL file with LoRA adapters or all parameters
              loss         the mean token loss of a model (and adapter) on a JSONL file
              generate     sample answers from a model with an optional adapter
              merge        fold an adapter into its base model and save a plain model
            """;

    private static int print(String text) {
        System.out.print(text);
        return 0;
    }

    public static void main(String[] argv) throws Exception {
        System.exit(run(argv));
    }

    static int run(String[] argv) throws Exception {
        String command = argv.length == 0 ? "quickstart"
                : argv[0].equals("--help") || argv[0].equals("-h") ? "help"
                : argv[0].startsWith("--") ? "quickstart" : argv[0];
        String[] rest = argv.length > 0 && !argv[0].startsWith("--") ? Arrays.copyOfRange(argv, 1, argv.length) : argv;
        boolean help = Arrays.asList(rest).contains("--help") || command.equals("help");
        try {
            switch (command) {
                case "quickstart" -> {
                    if (help) {
                        System.out.print(Quickstart.HELP);
                        return 0;
                    }
                    Args args = new Args(rest, Set.of());
                    Quickstart.Settings s = Quickstart.Settings.parse(args);
                    args.rejectUnknown();
                    Quickstart.run(s);
                }
                case "pretrain" -> {
                    return help ? print(Commands.PRETRAIN_HELP) : Commands.pretrain(new Args(rest, Commands.TRAIN_FLAGS));
                }
                case "sft" -> {
                    return help ? print(Commands.SFT_HELP) : Commands.sft(new Args(rest, Commands.TRAIN_FLAGS));
                }
                case "loss" -> {
                    return help ? print(Commands.LOSS_HELP) : Commands.loss(new Args(rest, Set.of()));
                }
                case "generate" -> {
                    return help ? print(Commands.GENERATE_HELP) : Commands.generate(new Args(rest, Set.of("--raw")));
                }
                case "merge" -> {
                    return help ? print(Commands.MERGE_HELP) : Commands.merge(new Args(rest, Set.of()));
                }
                case "help" -> System.out.print(USAGE);
                default -> {
                    System.err.print("unknown command '" + command + "'\n" + USAGE);
                    return 2;
                }
            }
        } catch (IllegalArgumentException e) {
            System.err.println("lora4j " + command + ": " + e.getMessage());
            return 2;
        } catch (java.io.IOException e) {
            System.err.println("lora4j " + command + ": " + e.getMessage());
            return 1;
        } catch (org.lora4j.train.trainer.TrainingDivergedException e) {
            System.err.println("lora4j " + command + ": " + e.getMessage());
            return 3;
        }
        return 0;
    }
}
