# Messages de cozo-broker (français). Chaque clé existe en nl, fr, de et en (un test le vérifie).
site-name = Connexion CoZo
skip-to-content = Aller au contenu
language-label = Langue
footer-help = Un problème pour vous connecter ? Contactez le helpdesk de l'application d'où vous venez.

chooser-title = Comment souhaitez-vous vous connecter ?
chooser-intro = Choisissez comment vous prouvez votre identité auprès de { $client }.
chooser-intro-direct = Choisissez comment vous prouvez votre identité.
chooser-level-needed = Ce service nécessite une connexion de niveau { $level } au minimum.
method-key = Clé numérique
method-key-help = Nom d'utilisateur et mot de passe, puis un code de sécurité fourni par votre application.
method-none = Aucune de vos méthodes de connexion n'est suffisamment sûre pour ce service. Contactez le helpdesk de l'application.

level-low = faible
level-substantial = substantiel
level-high = élevé

key-title = Se connecter avec votre clé numérique
key-intro = Tapez le nom d'utilisateur et le mot de passe que vous avez choisis lors de l'activation de votre clé numérique.
username-label = Nom d'utilisateur
password-label = Mot de passe
key-submit = Suivant
back-to-chooser = Choisir un autre moyen de connexion
wrong-credentials = Le nom d'utilisateur ou le mot de passe n'est pas correct. Vérifiez-les et réessayez.

code-title = Code de sécurité
code-intro = Choisissez l'une de vos clés et tapez le code qu'elle vous donne.
code-method-legend = Vos clés
key-totp = Code de sécurité de votre application
key-totp-help = Ouvrez votre application d'authentification et tapez le code à 6 chiffres affiché pour CoZo.
key-sms = Code par SMS
key-token = Code de votre carte token
key-webauthn = Clé de sécurité ou clé d'accès (passkey)
code-label = Code de sécurité
code-submit = Se connecter
wrong-code = Ce code n'est pas correct. Vérifiez le code dans votre application et réessayez.
replayed-code = Ce code a déjà été utilisé. Attendez le code suivant dans votre application (30 secondes au maximum) et tapez-le.
no-such-key = Vous n'avez aucune clé active de ce type. Choisissez une autre clé.
locked-until = Trop de tentatives erronées. Pour votre sécurité, la connexion est bloquée jusqu'à { $until }. Réessayez ensuite.
step-expired = Votre connexion a pris trop de temps. Veuillez taper à nouveau votre nom d'utilisateur et votre mot de passe.

session-expired-title = Votre session a expiré
session-expired = Cette page est restée ouverte trop longtemps ou a déjà été utilisée. Retournez dans l'application et recommencez.
csrf-failed = Pour votre sécurité, ce formulaire a expiré. Rechargez la page et réessayez.
bad-client-title = Cette demande de connexion ne peut pas être traitée
bad-client = L'application qui vous a envoyé ici n'est pas enregistrée pour cette adresse. Retournez dans l'application et réessayez ; si le problème persiste, contactez le helpdesk de l'application.
no-pending = Aucune application n'attend votre connexion. Commencez depuis l'application que vous souhaitez utiliser.
error-title = Un problème est survenu
error-internal = Le service de connexion n'a pas pu traiter votre demande. Réessayez dans quelques minutes.
back-to-start = Retour au début

account-title = Votre compte
account-logged-in-as = Vous êtes connecté(e) en tant que { $name }.
account-insz = Numéro de registre national (NISS)
account-level = Niveau de votre connexion
account-history = Vos connexions récentes
account-when = Quand
account-method = Méthode
account-level-col = Niveau
account-app = Application
account-no-history = Aucune connexion pour l'instant.
logout-submit = Se déconnecter
logged-out-title = Vous êtes déconnecté(e)
logged-out = Vous êtes déconnecté(e) du service de connexion CoZo. Fermez le navigateur si vous utilisez un ordinateur partagé.
logout-confirm-title = Se déconnecter ?
logout-confirm = Voulez-vous vous déconnecter du service de connexion CoZo ?

insz-error-length = Un numéro de registre national (NISS) compte 11 chiffres.
insz-error-digits = Un numéro de registre national (NISS) ne contient que des chiffres.
insz-error-month = Le mois indiqué dans ce numéro de registre national n'est pas possible.
insz-error-day = Le jour indiqué dans ce numéro de registre national n'est pas possible.
insz-error-serial = Le numéro d'ordre indiqué dans ce numéro de registre national n'est pas possible.
insz-error-check = Les chiffres de contrôle de ce numéro de registre national sont incorrects. Vérifiez s'il n'y a pas de faute de frappe.

step-up-title = Ce service demande une connexion plus forte
policy-level-substantial = Ce service demande une connexion de niveau substantiel ou élevé.
policy-no-sms-token = Ce service demande le code de sécurité de votre application ; un code par SMS ou de la carte token ne suffit pas.
policy-insz-required = Ce service demande votre numéro de registre national (NISS), que votre connexion ne donne pas encore.
policy-registry-unavailable = Le registre des prestataires de soins (CoBRHA) est injoignable pour le moment : votre profession ne peut pas être vérifiée. Réessayez dans quelques minutes.
policy-profession-required = Ce service est réservé aux prestataires de soins enregistrés dans CoBRHA. Si vous en êtes un, contactez l'INAMI pour faire vérifier votre enregistrement.
policy-not-allowed = Ce service n'accepte pas cette connexion.
acr-requested-higher = L'application a demandé une connexion plus forte que celle que vous avez utilisée.
registry-unavailable-title = Le registre est injoignable
back-to-app = Retour à l'application
key-webauthn-help = Utilisez la clé de sécurité ou la passkey que vous avez enregistrée.
key-sms-help = Choisissez ceci et cliquez sur « Se connecter » sans code : nous envoyons un code à votre téléphone mobile.
key-token-help = Choisissez ceci et cliquez sur « Se connecter » sans code : nous vous indiquons quel code de votre carte taper.
code-help = Pour un code par SMS ou de votre carte token, cliquez d'abord sur « Se connecter » avec le champ vide.
sms-sent = Nous avons envoyé un code par SMS au { $phone }. Tapez-le ci-dessous ; il est valable cinq minutes.
token-position = Tapez le code numéro { $position } de votre carte token.
no-challenge = Demandez d'abord un code : choisissez votre clé et cliquez sur « Se connecter » avec le champ du code vide.
card-used-up = Tous les codes de votre carte token ont été utilisés. Demandez une nouvelle carte à votre bureau d'enregistrement, ou choisissez une autre clé.
key-not-accepted-title = Votre clé n'est pas acceptée ici
mailbox-title = Boîte aux lettres de démonstration
mailbox-intro = Les messages que le broker enverrait par SMS ou par e-mail. Cette page n’existe que si aucune passerelle SMS ni serveur de courrier n’est configuré.
mailbox-empty = Pas encore de messages.
