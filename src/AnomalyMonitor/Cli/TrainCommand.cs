using System.CommandLine;
using System.Globalization;
using AnomalyMonitor.Core.Data;
using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Core.Runtime;
using AnomalyMonitor.Core.Scoring;
using AnomalyMonitor.Core.Thresholds;
using AnomalyMonitor.Core.Training;

namespace AnomalyMonitor.Cli;

internal static class TrainCommand
{
    public static Command Create()
    {
        var data = CommonOptions.Data();
        var output = new Option<string>("--out") { Description = "Directory to write the model to (model.weights + manifest.json).", Required = true };
        var normalClass = CommonOptions.NormalClass("Train only on this class (a label number or class-folder name): the 'normal' images.");
        var split = CommonOptions.Split();
        var limit = CommonOptions.Limit();
        var arch = new Option<string>("--arch") { Description = $"Architecture: {string.Join(", ", ModelSpec.Architectures)}.", DefaultValueFactory = _ => Recommended.Architecture };
        arch.AcceptOnlyFromAmong([.. ModelSpec.Architectures]);
        var latent = new Option<int?>("--latent") { Description = "Bottleneck size (default 64 for conv and conv-deep, chosen on validation; the worksheet's conv AE has 16; dense 64; conv-pool has none)." };
        var shape = new Option<string?>("--shape") { Description = "Model input as HEIGHTxWIDTHxCHANNELS, e.g. 28x28x1 (default: the data's own size)." };
        var epochs = new Option<int>("--epochs") { Description = "Training epochs (at least; see --min-steps).", DefaultValueFactory = _ => Recommended.Epochs };
        var minSteps = new Option<int>("--min-steps") { Description = "Optimizer steps to allow at least: a small set gets more epochs. Early stopping still ends a converged run. 0: epochs only.", DefaultValueFactory = _ => 0 };
        var batchSize = CommonOptions.BatchSize(128, "Images per training batch.");
        var lr = new Option<double>("--learning-rate", "--lr") { Description = "Adam learning rate.", DefaultValueFactory = _ => 1e-3 };
        var loss = new Option<LossKind>("--loss") { Description = "Training loss: bce or mse.", DefaultValueFactory = _ => LossKind.Bce };
        var error = new Option<ErrorMetric>("--error") { Description = "Per-image error used for scoring: mse or bce (mean over pixels).", DefaultValueFactory = _ => ErrorMetric.Mse };
        var defaults = new TrainingOptions();
        var validation = new Option<double>("--validation-split") { Description = "Fraction held out for validation, early stopping and calibration (at least --min-validation images, up to a quarter).", DefaultValueFactory = _ => defaults.ValidationSplit };
        var minValidation = new Option<int>("--min-validation") { Description = "Hold out at least this many images (up to a quarter of them): the conformal rule needs 1,000 held-out scores.", DefaultValueFactory = _ => defaults.MinValidation };
        var score = new Option<string>("--score") { Description = "What the model scores by: reconstruction (per-pixel error), latent (Mahalanobis distance of the code) or combined.", DefaultValueFactory = _ => Detector.Name(Recommended.Score) };
        score.AcceptOnlyFromAmong("reconstruction", "latent", "combined");
        var augment = new Option<string>("--augment") { Description = "Restoration training: none, or affine:rot=<degrees>,shift=<pixels> (each input moved a little, the original the target).", DefaultValueFactory = _ => Recommended.AugmentationText };
        var components = new Option<int>("--latent-components") { Description = "Gaussians in the latent density: 1 (one Gaussian) or more (a mixture, one per style of the normal images).", DefaultValueFactory = _ => Recommended.LatentComponents };
        var fits = new Option<int>("--latent-fits") { Description = "Mixture fits, each from its own k-means seed, pooled into the latent density: on a small sample one seed's luck moves recall by points. 1: one fit.", DefaultValueFactory = _ => defaults.LatentFits };
        var heldOutFit = new Option<bool>("--latent-held-out") { Description = "Fit the latent density on the held-out codes too (the calibration is then cross-fitted, 5 folds). The service's cold start does this." };
        var noShuffle = new Option<bool>("--no-shuffle") { Description = "Keep the data order instead of shuffling every epoch." };
        var seed = new Option<int?>("--seed") { Description = "Seed for a reproducible run (CPU)." };
        var patience = new Option<int>("--patience") { Description = "Stop after this many epochs without a better validation loss (0: never). The best weights are kept.", DefaultValueFactory = _ => 5 };
        var noise = new Option<string>("--noise") { Description = "Denoising: none, gaussian:<factor> (e.g. gaussian:0.5) or salt-pepper:<amount>.", DefaultValueFactory = _ => "none" };
        var threshold = new Option<string>("--threshold") { Description = "How scores are judged: mean-ksigma:k=3,log | mean-ksigma:k=3,linear | zscore:k=3 | percentile:p=99.", DefaultValueFactory = _ => ThresholdPolicy.Default.ToString() };
        var device = CommonOptions.Device();
        var maxBytes = CommonOptions.MaxBytes();

        var command = new Command("train", "Train an autoencoder on normal images and calibrate its threshold.")
        {
            data, output, normalClass, split, limit, arch, latent, shape, epochs, minSteps, batchSize, lr, loss, error, validation,
            noShuffle, seed, patience, noise, threshold, device, maxBytes, minValidation, score, augment, components, fits, heldOutFit,
        };
        command.SetAction((parse, ct) => CliRunner.RunAsync(token =>
        {
            var policy = ThresholdPolicy.Parse(parse.GetValue(threshold)!);
            var options = new TrainingOptions
            {
                Epochs = parse.GetValue(epochs),
                MinSteps = parse.GetValue(minSteps),
                BatchSize = parse.GetValue(batchSize),
                LearningRate = parse.GetValue(lr),
                Loss = parse.GetValue(loss),
                ValidationSplit = parse.GetValue(validation),
                MinValidation = parse.GetValue(minValidation),
                Score = Detector.Parse(parse.GetValue(score)!),
                Augmentation = Augmentation.Parse(parse.GetValue(augment)!),
                LatentComponents = parse.GetValue(components),
                LatentFits = parse.GetValue(fits),
                LatentHeldOut = parse.GetValue(heldOutFit),
                Shuffle = !parse.GetValue(noShuffle),
                Seed = parse.GetValue(seed),
                Patience = parse.GetValue(patience),
                Noise = NoiseSpec.Parse(parse.GetValue(noise)!),
            };
            var problems = options.Problems().ToList();
            if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems));

            var (torchDevice, deviceNote) = TorchRuntime.ResolveDevice(parse.GetValue(device)!);
            Console.WriteLine($"device: {deviceNote}");
            var shapeText = parse.GetValue(shape);
            var load = DatasetLoader.Load(parse.GetValue(data)!, new DatasetOptions
            {
                Split = parse.GetValue(split) ?? DatasetSplit.Train,
                Shape = shapeText is null ? null : ImageShape.Parse(shapeText),
                OnlyClass = parse.GetValue(normalClass),
                Limit = parse.GetValue(limit),
                Limits = CommonOptions.Limits(parse.GetValue(maxBytes), noResize: false),
            });
            CliRunner.ReportRejected(load.Rejected);
            if (load.Images.Count < 2)
                throw new ArgumentException($"{load.Description} holds {load.Images.Count} usable image(s) for training; at least 2 are needed.");
            Console.WriteLine($"data: {load.Description}, {load.Images.Count} images of {load.Images.Shape}" +
                (parse.GetValue(normalClass) is { } c ? $", class {c}" : ""));

            var spec = ModelSpec.Create(parse.GetValue(arch)!, load.Images.Shape, parse.GetValue(latent) ?? Recommended.Latent(parse.GetValue(arch)!));
            var request = new BuildRequest
            {
                Spec = spec,
                Training = options,
                ErrorMetric = parse.GetValue(error),
                Threshold = policy,
                DataDescription = load.Description,
                NormalClass = parse.GetValue(normalClass),
            };
            var outDir = parse.GetValue(output)!;
            var manifest = TrainingDisplay.Run(options.Epochs, progress =>
                ModelBuilder.TrainAndSave(load.Images, request, outDir, torchDevice, TimeProvider.System, progress, token));

            var cal = manifest.Calibration;
            bool crossFitted = cal.Source == Trainer.CrossFittedSource;
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"model: {spec.Architecture}, {manifest.ParameterCount:N0} parameters, best epoch {manifest.BestEpoch} of {manifest.History.Count} (budget {manifest.Training.EpochBudget}), {manifest.Training.Steps:N0} steps, {manifest.Training.Seconds.ToString("0.0", inv)} s{(manifest.Training.StoppedEarly ? ", stopped early" : "")}");
            if (manifest.Detector is { Latent: not null } detector)
            {
                // A pooled mixture holds every fit's components: the count the sample carried is one fit's.
                int perFit = detector.Mixture is { } pooled ? pooled.Components / options.LatentFits : 1;
                Console.WriteLine($"latent density: {(detector.Mixture is { } m ? $"a mixture of {m.Components} Gaussians" : "one Gaussian")} on {detector.Latent.Dimensions}-value codes" +
                    (options.LatentFits > 1 && detector.Mixture is not null ? $" ({options.LatentFits} fits of {perFit} pooled)" : "") +
                    (crossFitted ? ", fitted on the held-out codes too" : "") +
                    (manifest.Training.LatentComponents is { } asked && asked != perFit ? $" ({asked} asked; the sample carries at most one per {Trainer.CodesPerDimension}·d codes)" : ""));
            }
            Console.WriteLine($"calibration ({cal.Source}, {cal.Count} images): mean {cal.Mean.ToString("G5", inv)}, σ {cal.Std.ToString("G5", inv)}, log-mean {cal.LogMean.ToString("G5", inv)}, log-σ {cal.LogStd.ToString("G5", inv)}");
            Console.WriteLine($"threshold: {policy.UpperThreshold(cal).ToString("G6", inv)} ({policy})");
            if (CalibrationCheck.Of(policy, cal) is { } check)
            {
                Console.WriteLine($"on its calibration: flags {(100 * check.FlaggedShare).ToString("0.00", inv)}% of {check.Count} held-out normals; skew {check.Skew.ToString("0.00", inv)}");
                if (check.Warning is { } warning) Console.Error.WriteLine($"warning: {warning}");
            }
            if (options.LatentHeldOut && manifest.Detector is { Latent: not null } && !crossFitted)
                Console.Error.WriteLine("warning: --latent-held-out had no held-out images to add (--validation-split 0): the density was fitted on the training codes only, and calibrated on them.");
            if (manifest.Training.Diverged is { } diverged)
                Console.Error.WriteLine($"warning: training diverged ({diverged}); the model keeps the weights of epoch {manifest.BestEpoch}, the last with a finite loss.");
            Console.WriteLine($"saved: {Path.GetFullPath(outDir)}");
            return load.Rejected.Count > 0 ? ExitCodes.SomeInputsRejected : ExitCodes.Ok;
        }, ct));
        return command;
    }
}
