package org.lora4j.examples;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
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
              study        the main job: the organism and elasticity studies with their reports
                           (no command: study --quick --overwrite --out lora4j-study, plus the options given)
              organism     toy model organisms of emergent misalignment: rank-1 organisms, trajectories, report
              quickstart   fit a LoRA adapter to a known low-rank change and save it in PEFT format
              pretrain     train a small model from scratch (built-in corpus by default), Hugging Face layout
              sft          fine-tune a model on a JSONL file with LoRA adapters or all parameters
              loss         the mean token loss of a model (and adapter) on a JSONL file
              generate     sample answers from a model with an optional adapter
              merge        fold an adapter into its base model and save a plain model
              trajectory   how an sft run's adapter moved: norms, LCS_k and the transition step, PCA path, plots
              direction    the mean-difference direction per layer between two sets of examples
              compare-directions   per-layer cosines of two direction files (and an adapter's B)
              eval         sample answers to questions, judge them, report EM and coherence rates (or over training steps)
              kl           token-level KL(model || reference) over the scored tokens of a JSONL file
              elasticity   the elasticity study over model and corpus sizes (--out DIR [--quick]), or one
                           protocol (resistance|rebound --config FILE --out DIR)
            Errors are one line on stderr; --debug (or LORA4J_DEBUG=1) adds the stack trace.
            Exit codes: 0 done, 1 a file could not be read or written (or an unexpected error),
            2 a bad option or input, 3 training diverged or a loss was not finite.
            """;

    private static int print(String text) {
        System.out.print(text);
        return 0;
    }

    /** Set (to anything but 0 or false) to print the stack trace of an error, as --debug does. */
    static final String DEBUG_ENV = "LORA4J_DEBUG";

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    /**
     * Runs a command and returns its exit code: 0 done, 1 an input or output failed (a file that
     * cannot be read or written, a run directory in use, an unexpected error), 2 a bad option or
     * input the command refuses, 3 training diverged or a loss was not finite. Every error is one
     * line, {@code lora4j <command>: <message>}, on stderr; the stack trace only with --debug or
     * {@value #DEBUG_ENV}=1.
     */
    static int run(String[] argv) {
        List<String> args = new ArrayList<>(Arrays.asList(argv));
        String env = System.getenv(DEBUG_ENV);
        boolean debug = args.remove("--debug") | (env != null && !env.isBlank() && !env.equals("0") && !env.equalsIgnoreCase("false"));
        argv = args.toArray(String[]::new);
        String command = argv.length == 0 ? "study"
                : argv[0].equals("--help") || argv[0].equals("-h") ? "help"
                : argv[0].startsWith("--") ? "study" : argv[0];
        if (command.equals("study") && (argv.length == 0 || argv[0].startsWith("--"))) {
            argv = StudyCommand.withDefaults(argv);
        }
        try {
            return dispatch(command, argv);
        } catch (IllegalArgumentException e) {
            return fail(command, message(e), e, debug, 2);
        } catch (org.lora4j.train.trainer.TrainingDivergedException e) {
            return fail(command, e.getMessage(), e, debug, 3);
        } catch (java.io.IOException e) {
            return fail(command, message(e), e, debug, 1);
        } catch (OutOfMemoryError e) {
            return fail(command, "out of memory (" + e.getMessage() + "); give the JVM more with -Xmx, or train"
                    + " with a smaller --batch-size or --max-length", e, debug, 1);
        } catch (Exception | Error e) {
            return fail(command, message(e) + (debug ? "" : " (run with --debug for the stack trace)"), e, debug, 1);
        }
    }

    private static int fail(String command, String message, Throwable e, boolean debug, int code) {
        System.err.println("lora4j " + command + ": " + message);
        if (debug) {
            e.printStackTrace();
        }
        return code;
    }

    /**
     * A one-line message: the exception's own where it explains itself; for the JDK's file errors,
     * whose message is the bare path, what went wrong with it; else the exception's type too.
     */
    static String message(Throwable e) {
        String m = e.getMessage();
        if (e instanceof java.nio.file.NoSuchFileException f) {
            return f.getFile() + ": " + (f.getReason() == null ? "no such file or directory" : f.getReason());
        }
        if (e instanceof java.nio.file.AccessDeniedException f) {
            return "permission denied: " + f.getFile();
        }
        if (e instanceof java.nio.file.FileAlreadyExistsException f) {
            return "already exists: " + f.getFile();
        }
        if (e instanceof java.nio.file.NotDirectoryException f) {
            return "not a directory: " + f.getFile();
        }
        if (e instanceof java.nio.file.DirectoryNotEmptyException f) {
            return "directory not empty: " + f.getFile();
        }
        if (e instanceof java.io.IOException || e instanceof IllegalArgumentException) {
            return m == null ? e.getClass().getSimpleName() : oneLine(m);
        }
        String type = e.getClass().getSimpleName();
        if (m == null && e.getCause() != null && e.getCause() != e) {
            return type + " caused by " + message(e.getCause());
        }
        return m == null ? "unexpected " + type : type + ": " + oneLine(m);
    }

    /** A message's lines joined: after a line ending in ':' with a space, else with "; ". */
    static String oneLine(String m) {
        StringBuilder b = new StringBuilder();
        for (String line : m.strip().split("\n")) {
            String l = line.strip();
            if (l.isEmpty()) {
                continue;
            }
            if (b.length() > 0) {
                b.append(b.charAt(b.length() - 1) == ':' ? " " : "; ");
            }
            b.append(l);
        }
        return b.toString();
    }

    private static int dispatch(String command, String[] argv) throws Exception {
        String[] rest = argv.length > 0 && !argv[0].startsWith("--") ? Arrays.copyOfRange(argv, 1, argv.length) : argv;
        boolean help = Arrays.asList(rest).contains("--help") || command.equals("help");
        switch (command) {
            case "study" -> {
                return help ? print(StudyCommand.HELP) : StudyCommand.run(new Args(rest, StudyCommand.FLAGS));
            }
            case "organism" -> {
                return help ? print(OrganismCommand.HELP) : OrganismCommand.run(new Args(rest, OrganismCommand.FLAGS));
            }
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
                return help ? print(Commands.MERGE_HELP) : Commands.merge(new Args(rest, Set.of("--overwrite")));
            }
            case "trajectory" -> {
                return help ? print(TrajectoryCommand.HELP) : TrajectoryCommand.run(new Args(rest, Set.of("--overwrite")));
            }
            case "direction" -> {
                return help ? print(DirectionCommands.DIRECTION_HELP)
                        : DirectionCommands.direction(new Args(rest, Set.of("--balance", "--overwrite")));
            }
            case "compare-directions" -> {
                return help ? print(DirectionCommands.COMPARE_HELP) : DirectionCommands.compare(rest);
            }
            case "eval" -> {
                return help ? print(EvalCommand.HELP) : EvalCommand.run(new Args(rest, EvalCommand.FLAGS));
            }
            case "kl" -> {
                return help ? print(ElasticityCommands.KL_HELP) : ElasticityCommands.kl(new Args(rest, Set.of()));
            }
            case "elasticity" -> {
                return help ? print(ElasticityCommands.ELASTICITY_HELP) : ElasticityCommands.elasticity(rest);
            }
            case "help" -> System.out.print(USAGE);
            default -> {
                System.err.print("unknown command '" + command + "'\n" + USAGE);
                return 2;
            }
        }
        return 0;
    }
}
