// The curated clinical vocabulary the PHI scanner matches: condition terms, medication terms and lab analytes.
//
// Why these and not a full terminology: a template or a CRM note is marketing copy, and what makes it PHI is a term
// that reveals (or, sent to a segment, implies) a person's condition. The list holds sensitive and chronic
// conditions, the tests that imply them (HbA1c, viral load), and the medications that imply them. Routine
// preventive care that every adult is offered (flu shots, vaccines, annual physicals, mammograms) is deliberately
// absent: it reveals nothing about the recipient. Entries are lower-case token sequences ("type 2 diabetes");
// hyphens and spaces both separate tokens. `exactCase` entries match only as written, because their lower-case
// form is an ordinary word ("PrEP" vs meal prep, "AIDS" vs hearing aids).

export interface TermEntry {
  term: string;
  exactCase?: boolean;
}

const t = (...terms: string[]): TermEntry[] => terms.map((term) => ({ term }));
const exact = (...terms: string[]): TermEntry[] => terms.map((term) => ({ term, exactCase: true }));

/** Conditions, and tests whose mere mention implies one. */
export const conditionTerms: readonly TermEntry[] = [
  // metabolic and endocrine
  ...t('diabetes', 'diabetic', 'diabetics', 'prediabetes', 'pre diabetes', 'prediabetic', 'type 1 diabetes', 'type 2 diabetes',
    'gestational diabetes', 'hyperglycemia', 'hypoglycemia', 'a1c', 'hba1c', 'hemoglobin a1c', 'haemoglobin a1c',
    'diabetic retinopathy', 'neuropathy', 'obesity', 'morbid obesity', 'hypothyroidism', 'hyperthyroidism', 'thyroid disease',
    'metabolic syndrome'),
  // infectious and sexual health
  ...t('hiv', 'hiv positive', 'hepatitis', 'hepatitis b', 'hepatitis c', 'hep c', 'syphilis', 'gonorrhea', 'chlamydia', 'herpes',
    'tuberculosis', 'viral load', 'cd4 count', 'sexually transmitted', 'antiretroviral'),
  ...exact('AIDS', 'STD', 'STDs', 'STI', 'STIs', 'HCV', 'HBV', 'TB'),
  // reproductive
  ...t('pregnancy', 'pregnancies', 'pregnant', 'prenatal', 'miscarriage', 'miscarriages', 'abortion', 'abortions', 'infertility',
    'ivf', 'in vitro fertilization', 'stillbirth', 'ectopic', 'postpartum', 'trimester', 'erectile dysfunction', 'endometriosis',
    'polycystic ovary', 'pcos', 'menopause'),
  // oncology
  ...t('cancer', 'cancers', 'tumor', 'tumour', 'tumors', 'oncology', 'chemotherapy', 'chemo', 'radiation therapy', 'leukemia',
    'lymphoma', 'melanoma', 'carcinoma', 'metastatic', 'metastasis', 'malignant', 'mastectomy', 'sarcoma', 'myeloma'),
  // mental and behavioural health
  ...t('depression', 'depressive', 'depressed', 'anxiety disorder', 'panic disorder', 'bipolar', 'schizophrenia', 'schizophrenic',
    'psychosis', 'psychotic', 'ptsd', 'post traumatic stress', 'ocd', 'obsessive compulsive', 'adhd', 'autism', 'autistic',
    'eating disorder', 'anorexia', 'bulimia', 'suicidal', 'suicide', 'self harm', 'mental illness', 'psychiatric'),
  // substance use
  ...t('opioid', 'opioids', 'opiate', 'opiates', 'opioid use disorder', 'substance use', 'substance abuse', 'addiction', 'addicted',
    'alcoholism', 'alcohol use disorder', 'overdose', 'overdoses', 'rehab', 'withdrawal symptoms', 'heroin',
    'medication assisted treatment'),
  // cardiovascular, renal, respiratory, neurological
  ...t('hypertension', 'high blood pressure', 'heart failure', 'congestive heart failure', 'heart disease', 'coronary artery disease',
    'atrial fibrillation', 'afib', 'heart attack', 'myocardial infarction', 'stroke', 'high cholesterol', 'hyperlipidemia',
    'kidney disease', 'chronic kidney disease', 'ckd', 'renal failure', 'dialysis', 'copd', 'emphysema', 'asthma',
    'asthmatic', 'sleep apnea', 'cystic fibrosis', 'dementia', 'alzheimer', 'alzheimers', 'parkinson', 'parkinsons', 'epilepsy',
    'seizure', 'seizures', 'multiple sclerosis', 'cirrhosis', 'fatty liver', 'crohn', 'crohns', 'ulcerative colitis',
    'rheumatoid arthritis', 'lupus', 'sickle cell', 'hemophilia', 'osteoporosis', 'amputation', 'transplant'),
  ...t('terminal illness', 'hospice'),
  ...exact('ALS'),
];

/** Medications (generic and brand) whose mention implies a condition. */
export const medicationTerms: readonly TermEntry[] = [
  ...t('insulin', 'metformin', 'glipizide', 'glyburide', 'sitagliptin', 'januvia', 'jardiance', 'empagliflozin', 'farxiga',
    'dapagliflozin', 'ozempic', 'semaglutide', 'wegovy', 'rybelsus', 'mounjaro', 'zepbound', 'tirzepatide', 'trulicity',
    'dulaglutide', 'liraglutide', 'victoza', 'saxenda', 'lantus', 'humalog', 'novolog', 'levemir', 'tresiba', 'glp 1', 'glp1'),
  ...t('oxycodone', 'oxycontin', 'hydrocodone', 'vicodin', 'percocet', 'fentanyl', 'morphine', 'tramadol', 'codeine',
    'buprenorphine', 'suboxone', 'methadone', 'naloxone', 'narcan', 'naltrexone', 'vivitrol'),
  ...t('sertraline', 'zoloft', 'fluoxetine', 'prozac', 'escitalopram', 'lexapro', 'citalopram', 'paroxetine', 'bupropion',
    'wellbutrin', 'venlafaxine', 'duloxetine', 'cymbalta', 'lithium', 'lamotrigine', 'quetiapine', 'seroquel', 'aripiprazole',
    'abilify', 'risperidone', 'olanzapine', 'clozapine', 'antidepressant', 'antidepressants', 'antipsychotic', 'antipsychotics',
    'adderall', 'ritalin', 'methylphenidate', 'vyvanse', 'xanax', 'alprazolam', 'klonopin', 'clonazepam', 'lorazepam', 'ativan',
    'diazepam', 'valium'),
  ...t('truvada', 'descovy', 'biktarvy', 'genvoya', 'tenofovir', 'emtricitabine', 'dolutegravir', 'cabotegravir', 'apretude'),
  ...exact('PrEP', 'ART'),
  ...t('tamoxifen', 'letrozole', 'anastrozole', 'herceptin', 'keytruda', 'methotrexate', 'humira', 'adalimumab', 'enbrel'),
  ...t('atorvastatin', 'lipitor', 'rosuvastatin', 'crestor', 'simvastatin', 'statin', 'statins', 'lisinopril', 'losartan',
    'amlodipine', 'metoprolol', 'carvedilol', 'hydrochlorothiazide', 'furosemide', 'lasix', 'warfarin', 'coumadin', 'eliquis',
    'apixaban', 'xarelto', 'rivaroxaban', 'clopidogrel', 'plavix', 'nitroglycerin', 'entresto'),
  ...t('levothyroxine', 'synthroid', 'albuterol', 'advair', 'symbicort', 'spiriva', 'montelukast', 'prednisone',
    'donepezil', 'aricept', 'memantine', 'levodopa', 'carbidopa', 'levetiracetam', 'keppra', 'gabapentin', 'sildenafil',
    'viagra', 'cialis', 'tadalafil', 'clomid', 'clomiphene', 'mifepristone', 'misoprostol'),
];

/**
 * Lab analytes: alone they are ordinary words in health copy ("glucose meters"), so they are findings only when a
 * measured value follows or precedes them. Written as regular-expression fragments, longest first.
 */
export const labAnalytes: readonly string[] = [
  'hemoglobin a1c', 'haemoglobin a1c', 'hba1c', 'hb a1c', 'a1c', 'fasting glucose', 'blood glucose', 'glucose', 'blood sugar',
  'ldl cholesterol', 'hdl cholesterol', 'total cholesterol', 'cholesterol', 'ldl', 'hdl', 'triglycerides', 'creatinine', 'egfr',
  'gfr', 'tsh', 't4', 'psa', 'inr', 'blood pressure', 'bp', 'bmi', 'body mass index', 'viral load', 'cd4 count', 'cd4',
  'potassium', 'sodium', 'hemoglobin', 'haemoglobin', 'hgb', 'hematocrit', 'platelets', 'platelet count', 'wbc',
  'white blood cell count', 'vitamin d', 'alt', 'ast', 'bilirubin', 'troponin', 'ferritin', 'microalbumin', 'uacr',
  'heart rate', 'pulse', 'oxygen saturation', 'spo2',
];

/** Units that make a number a measured clinical value (mg alone is a dose or a product size, not a lab result). */
export const labUnits: readonly string[] = [
  'mg/dl', 'mg/l', 'mmol/l', 'mmol/mol', 'µmol/l', 'umol/l', 'mmhg', 'mm hg', 'ng/ml', 'ng/dl', 'pg/ml', 'g/dl', 'g/l',
  'miu/l', 'µiu/ml', 'uiu/ml', 'mu/l', 'iu/l', 'u/l', 'meq/l', 'copies/ml', 'cells/mm3', 'cells/µl', 'cells/ul', 'ml/min',
  'ml/min/1.73m2', 'kg/m2', 'bpm',
];
